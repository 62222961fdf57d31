"""Run-length tokenization (RLT), a content-adaptive reducer that runs
before the first block."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmaction_sttm.functional.rlt import (PAIRS, pack_order, run_lengths,
                                          tubelet_differences)
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.registry import MODELS

#: How a batch of videos with different token counts runs through the blocks.
#: What a kept token's size is: its run's length, or one.
SIZES = ('run', 'one')


@MODELS.register_module()
class RLT(BaseModule):
    """Drop the tubelets that repeat the one at the same place one temporal
    step earlier (Choudhury et al., "Don't Look Twice", NeurIPS 2024).

    Every run of repeats keeps its first tubelet; the video's token count
    then depends on its content, and a batch carries padding (see
    :attr:`~mmaction_sttm.functional.tokens.Tokens.counts`).

    Args:
        embed_dims (int): Channels ``D`` (set by the backbone).
        steps (int): Temporal steps of a training clip (set by the backbone);
            the length embedding has one row per possible run length, and
            longer runs (longer clips at test time) share the last row.
        threshold (float): A tubelet repeats when the mean absolute
            difference of its pixels to the previous step's, in the units of
            the normalised input, is below this. Defaults to 0.1.
        pairs (str): Which frames the difference compares: ``'all'``,
            every frame of a tubelet against the same frame one step
            earlier, averaged (our reading); ``'ends'``, the tubelet's last
            frame against the previous tubelet's first, the one pair the
            RLT authors' code compares (:func:`~mmaction_sttm.functional.
            rlt.tubelet_differences`). Defaults to ``'all'``.
        length_embed (bool): Add a learned embedding of the run length to
            each kept token, initialised to zero so that a trained model is
            unchanged off the shelf. Defaults to True.
        sizes (str): ``'run'``: a kept token stands for its run (its size is
            the run length, as a merged token's is its group's), so the
            size-weighted mean pool and proportional attention count the
            repeats; ``'one'``: every kept token has size one, as in the RLT
            paper. Defaults to ``'run'``.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 steps: int,
                 threshold: float = 0.1,
                 pairs: str = 'all',
                 length_embed: bool = True,
                 sizes: str = 'run',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(
                threshold,
                bool) or not isinstance(threshold,
                                        (int, float)) or not threshold >= 0:
            raise ValueError(f'reducer.threshold must be a number >= 0 (in '
                             f'the units of the normalised input), got '
                             f'{threshold!r}')
        if sizes not in SIZES:
            raise ValueError(
                f'reducer.sizes must be one of {SIZES}, got {sizes!r}')
        if pairs not in PAIRS:
            raise ValueError(
                f'reducer.pairs must be one of {PAIRS}, got {pairs!r}')
        self.threshold = float(threshold)
        self.pairs = pairs
        self.sizes = sizes
        self.steps = int(steps)
        self.length_embed = nn.Parameter(torch.zeros(
            self.steps, embed_dims)) if length_embed else None

    def init_weights(self) -> None:
        """Zero length embedding: off the shelf, a kept token is the
        unreduced model's token."""
        super().init_weights()
        if self.length_embed is not None:
            nn.init.zeros_(self.length_embed)

    def forward(self, clip: Tensor, tokens: Tokens,
                patch_size: Tuple[int, int], tubelet: int) -> Tokens:
        """Reduce the embedded tokens of ``clip``.

        Args:
            clip (Tensor): The backbone's input ``(B, C, T, H, W)``.
            tokens (Tokens): Its embedded patch tokens, frame-major, on the
                grid.
            patch_size (tuple[int, int]): The family's patch size.
            tubelet (int): The family's frames per token.

        Returns:
            Tokens: The kept tokens, each video's first, padded with size
            zero, with :attr:`~Tokens.counts`; ``frames`` is None (steps no
            longer hold the same number of tokens). Sources, when tracked,
            map each dropped tubelet to its run's kept token.
        """
        runs = run_lengths(
            tubelet_differences(clip, patch_size, tubelet, self.pairs) <
            self.threshold)
        order, counts = pack_order(runs.keep)
        longest = int(counts.max())
        order = order[:, :longest]
        batch, dims = tokens.x.shape[0], tokens.x.shape[-1]
        valid = torch.arange(longest, device=order.device)[None] \
            < counts[:, None]
        lengths = runs.lengths.gather(1, order) * valid

        def take(values: Tensor) -> Tensor:
            values = values.expand(batch, -1, -1)
            picked = values.gather(1, order[..., None].expand(-1, -1, dims))
            return picked * valid[..., None].to(picked.dtype)

        x = take(tokens.x)
        if self.length_embed is not None:
            rows = (lengths.clamp(1, self.steps) - 1)
            x = x + self.length_embed[rows].to(x.dtype) \
                * valid[..., None].to(x.dtype)
        if self.sizes == 'run':
            sizes = lengths.to(tokens.sizes.dtype)
        else:
            sizes = valid.to(tokens.sizes.dtype)
        sources = assign = None
        if tokens.sources is not None:
            # Padded position of every input token's run head.
            where = torch.empty_like(runs.head)
            where.scatter_(
                1, order,
                torch.arange(longest, device=order.device).expand(batch, -1))
            assign = F.one_hot(where.gather(1, runs.head),
                               longest).to(tokens.sources.dtype)
            sources = torch.bmm(tokens.sources, assign)
        return Tokens(x, take(tokens.pos), sizes, None, False, sources, assign,
                      counts)

    def extra_repr(self) -> str:
        return (f'threshold={self.threshold}, pairs={self.pairs!r}, '
                f'sizes={self.sizes!r}')


def build_reducer(reducer: Optional[dict], embed_dims: int,
                  steps: int) -> Optional[nn.Module]:
    """Build a backbone's ``reducer`` config (None: no reducer).

    Args:
        reducer (dict, optional): E.g. ``dict(type='RLT', threshold=0.1)``.
        embed_dims (int): The backbone's channels.
        steps (int): Temporal steps of the backbone's training clip.

    Returns:
        nn.Module | None: The reducer.

    Raises:
        ValueError / TypeError: An unknown type or key, naming it.
    """
    if reducer is None:
        return None
    if not isinstance(reducer, dict):
        raise ValueError(f'reducer must be a dict, got {type(reducer)}')
    cfg = dict(reducer)
    cfg.setdefault('type', 'RLT')
    if cfg['type'] not in ('RLT', RLT):
        raise ValueError(f"reducer.type must be 'RLT', got {cfg['type']!r}")
    for key in ('embed_dims', 'steps'):
        if key in cfg:
            raise ValueError(f'reducer.{key} is set by the backbone; remove '
                             f'it from the config')
    try:
        return MODELS.build(dict(cfg, embed_dims=embed_dims, steps=steps))
    except TypeError as err:
        raise TypeError(f'reducer: {err}') from err
