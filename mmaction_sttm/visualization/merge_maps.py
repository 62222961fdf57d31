"""Merge maps: which token every input patch belongs to after each merge.

:func:`trace_merging` takes a built model (a recognizer or its backbone) and
one clip. A backbone qualifies if it implements the merging-backbone
contract (:class:`~mmaction_sttm.models.backbones.base.MergingBackbone`:
``forward_tokens``, ``forward_trace``, ``geometry`` and a ``merge``
schedule or None), with STTM or any other registered merger. The helpers
here that find the backbone and the patch grid are shared with
:mod:`.rollout`.
"""
import contextlib
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

import torch
from torch import Tensor, nn

from mmaction_sttm.functional.tokens import Tokens


@dataclass
class StageMap:
    """The tokens of one stage, seen from the input patches.

    Args:
        layer (int): Block after which the stage's merge ran; 0 for the
            embedding (before any merge).
        stage (str): ``'embedding'``, ``'spatial'`` or ``'spatiotemporal'``.
        assignment (Tensor): ``(T', H', W')`` long: for every input patch
            (tubelet) the index of the stage's token it belongs to, i.e. the
            argmax of its row of the soft source map.
        sources (Tensor): Soft source map ``(T' * H' * W', L)``, rows sum to
            one (one-hot for hard mergers and for the embedding).
        sizes (Tensor): The model's token sizes ``(L,)``.
        frames (int, optional): Frame groups while the tokens are still
            grouped per frame; None after a spatio-temporal merge.
    """
    layer: int
    stage: str
    assignment: Tensor
    sources: Tensor
    sizes: Tensor
    frames: Optional[int]

    @property
    def num_tokens(self) -> int:
        """Number of tokens ``L`` of the stage."""
        return int(self.sizes.numel())

    @property
    def counts(self) -> Tensor:
        """Patches whose argmax is each token, ``(L,)`` long."""
        return torch.bincount(
            self.assignment.flatten(), minlength=self.num_tokens)

    @property
    def num_owning(self) -> int:
        """Tokens that own at least one patch in the hard map (the number of
        colours of the stage's row in a merge sheet)."""
        return int((self.counts > 0).sum())

    @property
    def label(self) -> str:
        """Row label of the stage in the pictures."""
        if self.layer == 0:
            return f'patches\n{self.num_tokens} tokens'
        label = (f'after block {self.layer}\n{self.stage}\n'
                 f'{self.num_tokens} tokens')
        owning = self.num_owning
        if owning != self.num_tokens:
            # Soft merges (STTM): some tokens own no patch outright.
            label += f'\n({owning} own patches)'
        return label


@dataclass
class MergeTrace:
    """How one clip's patches were merged, stage by stage.

    Args:
        stages (list[StageMap]): The embedding, then one entry per merge.
        grid (tuple[int, int, int]): Patch grid ``(T', H', W')`` of the
            input tokens; ``T' = T / tubelet``.
        tubelet (int): Input frames per token along time (2 for VideoMAE's
            tubelets, 1 for per-frame patches).
        patch_size (tuple[int, int]): Pixels per patch ``(h, w)``.
        num_frames (int): Frames ``T`` of the clip.
        has_cls (bool): Whether the backbone has a CLS token.
    """
    stages: List[StageMap]
    grid: Tuple[int, int, int]
    tubelet: int
    patch_size: Tuple[int, int]
    num_frames: int
    has_cls: bool

    @property
    def merges(self) -> List[StageMap]:
        """The stages after a merge (all but the embedding)."""
        return self.stages[1:]

    def frame_map(self, stage: int, frame: int) -> Tensor:
        """Token index of every patch of input frame ``frame`` at stage
        ``stage``, ``(H', W')`` (a tubelet covers ``tubelet`` frames)."""
        return self.stages[stage].assignment[frame // self.tubelet]


def _backbone(model: nn.Module) -> nn.Module:
    """The merging backbone of a recognizer, or ``model`` itself."""
    for candidate in (model, getattr(model, 'backbone', None)):
        if candidate is not None and hasattr(candidate, 'forward_trace'):
            return candidate
    raise TypeError(f'{type(model).__name__} has no forward_trace(): pass '
                    f'a merging backbone (one implementing '
                    f'mmaction_sttm.models.backbones.MergingBackbone) or a '
                    f'recognizer with one')


def _as_batch(clip: Tensor, backbone: nn.Module) -> Tensor:
    """One clip as a batch of one ``(1, C, T, H, W)`` on the backbone's
    device and dtype."""
    if clip.dim() == 4:
        clip = clip.unsqueeze(0)
    if clip.dim() != 5 or clip.shape[0] != 1:
        raise ValueError(f'expected one clip (C, T, H, W) or (1, C, T, H, W), '
                         f'got shape {tuple(clip.shape)}')
    param = next(backbone.parameters(), None)
    if param is not None:
        clip = clip.to(device=param.device, dtype=param.dtype)
    return clip


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout, deterministic mergers) for the duration."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _geometry(backbone: nn.Module, clip: Tensor, embedding: Tokens) -> dict:
    """Grid, tubelet and patch size of the input tokens of ``clip``, from
    the backbone's own geometry."""
    num_frames, height, width = clip.shape[2:]
    patch, tubelet, _ = backbone.geometry
    grid = (num_frames // tubelet, height // patch[0], width // patch[1])
    if grid[0] * grid[1] * grid[2] != embedding.x.shape[1]:
        raise ValueError(f'{type(backbone).__name__}.geometry gives a '
                         f'{grid} token grid, but the embedding has '
                         f'{embedding.x.shape[1]} tokens')
    return dict(
        grid=grid,
        tubelet=tubelet,
        patch_size=tuple(patch),
        num_frames=int(num_frames))


@torch.no_grad()
def trace_merging(model: nn.Module, clip: Tensor) -> MergeTrace:
    """Which token does every input patch belong to after each merge?

    Runs the backbone's ``forward_tokens`` once in eval mode with sources
    tracked. Each
    stage's soft source map ``(L0, L)`` (rows sum to one, column sums equal
    the token sizes) becomes a hard map by an argmax over tokens, so every
    patch belongs to exactly one token of every stage.

    What holds, and what the tests check:

    - the hard map covers every patch exactly once per stage;
    - the soft map's column sums equal the model's sizes;
    - hard mergers (ToMe, EViT, RandomDrop, UniformPool) and the embedding
      have one-hot source rows, so the patch count of each token equals its
      size exactly and every token owns at least one patch (colours ==
      tokens);
    - STTM's assignment is soft. After its first merge every meta token
      still owns at least its own patch (its logit ``1 / tau`` beats every
      other meta token). After a later merge a token's patch count is close
      to, not equal to, its size, and a meta token whose mass is spread
      over patches that each belong more to other tokens owns no patch in
      the hard map. :attr:`StageMap.num_owning` counts the tokens that do;
      it is at most the number of tokens.

    Args:
        model (nn.Module): A recognizer with a merging backbone, or the
            backbone itself.
        clip (Tensor): One clip ``(C, T, H, W)`` or ``(1, C, T, H, W)``,
            normalised as the model expects (see :func:`load_clip`).

    Returns:
        MergeTrace: One :class:`StageMap` for the embedding and one per
        merge. A model without a merger gives the embedding only.
    """
    backbone = _backbone(model)
    clip = _as_batch(clip, backbone)
    schedule = backbone.merge_schedule
    with _eval_mode(backbone):
        _, stages = backbone.forward_tokens(clip, track_sources=True)
    geometry = _geometry(backbone, clip, stages[0])
    grid = geometry['grid']
    num_patches = grid[0] * grid[1] * grid[2]
    maps = []
    for index, tokens in enumerate(stages):
        if index == 0:
            layer, stage = 0, 'embedding'
            sources = torch.eye(num_patches)
        else:
            layer = schedule.layers[index - 1]
            stage = schedule.stages[index - 1]
            if tokens.sources is None:
                raise ValueError(f'the merger after block {layer} returned no '
                                 f'source map; it must carry the sources it '
                                 f'is given')
            sources = tokens.sources[0].float().cpu()
        sizes = tokens.sizes[0].float().cpu()
        assignment = sources.argmax(dim=1).reshape(grid)
        maps.append(
            StageMap(layer, stage, assignment, sources, sizes, tokens.frames))
    return MergeTrace(
        stages=maps, has_cls=backbone.geometry.has_cls, **geometry)
