"""Whether a checkpoint fits a model, before it is loaded."""
import re
from typing import Any, Tuple

from .cli import ToolError, error_line
from .paths import require_file

#: Share of a model's own weights (mergers' not counted) that a checkpoint
#: must hold for a tool to load it.
MIN_KEY_SHARE = 0.5


def _merger_prefixes(model: Any) -> Tuple[str, ...]:
    """State-dict prefixes of the merging modules in ``model``: a merger
    added to a trained model (off the shelf) has no weights in its
    checkpoint."""
    from mmaction_sttm.models.merge_schedule import MergeSchedule
    from mmaction_sttm.models.mergers.base import Merger
    return tuple(f'{name}.' for name, module in model.named_modules()
                 if isinstance(module, (MergeSchedule, Merger)))


def checkpoint_match(model: Any, state: dict) -> Tuple[int, int]:
    """How many of a model's own weights a state dict holds.

    Args:
        model (nn.Module): The model (a DDP wrapper is looked through).
        state (dict): The checkpoint's ``state_dict`` (a ``module.``
            prefix is stripped, as MMEngine's loader does).

    Returns:
        tuple[int, int]: Keys of the model found in ``state`` with the same
        shape, and the model's keys; the weights of mergers (STTM and the
        other :mod:`~mmaction_sttm.models.mergers`) are not counted.
    """
    model = getattr(model, 'module', model)
    state = {
        (k[len('module.'):] if k.startswith('module.') else k): v
        for k, v in state.items()
    }
    skip = _merger_prefixes(model)
    own = {
        k: v
        for k, v in model.state_dict().items() if not k.startswith(skip)
    }
    matched = sum(
        1 for k, v in own.items()
        if k in state and getattr(state[k], 'shape', None) == v.shape)
    return matched, len(own)


def check_checkpoint(model: Any,
                     path: str,
                     min_share: float = MIN_KEY_SHARE) -> None:
    """Refuse a checkpoint that holds few of the model's weights (the wrong
    model, or the wrong config for it), before a tool loads it.

    Args:
        model (nn.Module): The built model.
        path (str): Checkpoint file (MMEngine layout or a plain state dict).
        min_share (float): Share of the model's keys (mergers' not counted)
            that must be found with their shape. Default: 0.5.
    """
    from mmengine.runner import CheckpointLoader

    from mmaction_sttm.engine.checkpoint_loading import (
        NotACheckpointError, UnsafeCheckpointError, safe_checkpoint_loading)
    require_file(path, 'checkpoint')
    try:
        # Read as the zoo's runs read it (the allow-listed safe loader), so
        # that MMEngine's own checkpoints pass on torch >= 2.6 too.
        with safe_checkpoint_loading():
            checkpoint = CheckpointLoader.load_checkpoint(
                path, map_location='cpu')
    except NotACheckpointError as error:
        raise ToolError(f'checkpoint {error_line(error)}') from error
    except UnsafeCheckpointError as error:
        reason = re.sub(r'^Refusing to load checkpoint \S+: ', '',
                        error_line(error))
        raise ToolError(f'checkpoint {path} is unsafe: {reason}') from error
    except (OSError, RuntimeError, ValueError, EOFError) as error:
        raise ToolError(f'checkpoint {path} cannot be read: '
                        f'{error_line(error)}') from error
    state = checkpoint
    if isinstance(checkpoint, dict) and isinstance(
            checkpoint.get('state_dict'), dict):
        state = checkpoint['state_dict']
    if not isinstance(state, dict):
        raise ToolError(f'checkpoint {path} holds no state dict (got '
                        f'{type(state).__name__})')
    matched, total = checkpoint_match(model, state)
    if total and matched < min_share * total:
        raise ToolError(
            f'checkpoint {path} matches {matched} of {total} model keys '
            f'(need at least {min_share:.0%}; merger weights not counted); '
            'wrong model or config?')
