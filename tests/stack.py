"""What the tests need to run unchanged across the supported stack.

**torch.** :data:`TORCH_VERSION` and :func:`torch_at_least` mark the tests
of features that turn themselves off on an older torch.

**MMAction2 1.1 / 1.2.** MMAction2 1.2.0 renamed the label fields of
``ActionDataSample``:

=====================  ===============================  ====================
                       1.1                              1.2
=====================  ===============================  ====================
ground-truth label     ``gt_labels.item`` (LabelData)   ``gt_label`` (Tensor)
setter                 ``set_gt_labels``                ``set_gt_label``
class scores           ``pred_scores.item`` (LabelData) ``pred_score``
dumped (``--dump``)    ``r['pred_scores']['item']``     ``r['pred_score']``
=====================  ===============================  ====================

The tests read and write labels through these helpers only, so that the
suite runs unchanged against either version.
"""
import re
from typing import Any, Mapping, Tuple, Union

import torch
from torch import Tensor

#: ``(major, minor)`` of the running torch.
TORCH_VERSION: Tuple[int, int] = tuple(
    int(v) for v in re.findall(r'\d+', torch.__version__)[:2])


def torch_at_least(major: int, minor: int) -> bool:
    """Whether the running torch is ``major.minor`` or newer."""
    return TORCH_VERSION >= (major, minor)


def load_runner_checkpoint(path: str) -> dict:
    """A checkpoint that MMEngine's Runner wrote, through MMEngine's loader.

    That is the project's weights-only loader on torch >= 2.6 and MMEngine's
    own (full unpickling, torch's default) before, where the allow-list for
    the Runner's ``message_hub`` cannot be registered.

    Args:
        path (str): The checkpoint file.

    Returns:
        dict: The checkpoint.
    """
    from mmengine.runner.checkpoint import _load_checkpoint

    from mmaction_sttm.engine import safe_checkpoint_loading
    with safe_checkpoint_loading():
        return _load_checkpoint(path, map_location='cpu')


def gt_label(sample: Any) -> int:
    """The ground-truth class of a single-label sample.

    Args:
        sample (ActionDataSample): A data sample of either version.

    Returns:
        int: The label.
    """
    if 'gt_labels' in sample:
        value = sample.gt_labels.item
    else:
        value = sample.gt_label
    return int(torch.as_tensor(value).reshape(-1)[0])


def with_gt_label(sample: Any, label: Union[int, Tensor]) -> Any:
    """Set the ground-truth label with the version's own setter.

    Args:
        sample (ActionDataSample): The sample to label.
        label (int | Tensor): The label.

    Returns:
        ActionDataSample: ``sample``.
    """
    setter = getattr(sample, 'set_gt_labels', None) or sample.set_gt_label
    return setter(label)


def pred_scores(result: Union[Any, Mapping]) -> Tensor:
    """The class scores of a prediction.

    Args:
        result (ActionDataSample | dict): A predicted data sample, or one of
            the dicts that ``tools/test.py --dump`` writes.

    Returns:
        Tensor: The scores, shape ``(num_classes,)``.
    """
    if isinstance(result, Mapping):
        if 'pred_scores' in result:
            return result['pred_scores']['item']
        return result['pred_score']
    if 'pred_scores' in result:
        return result.pred_scores.item
    return result.pred_score
