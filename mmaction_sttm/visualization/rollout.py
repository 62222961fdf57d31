"""Attention rollout through token merges.

Abnar & Zuidema's attention rollout (ACL 2020) asks which input tokens the
output was computed from. :func:`attention_rollout` runs it on the merging
backbones, with the merges as steps of the same matrix product, so the
answer is always over the input patches. Everything it needs (each block's
attention, each merge's assignment, the geometry) comes from the backbone's
:meth:`~mmaction_sttm.models.backbones.base.MergingBackbone.forward_trace`.
"""
import torch
from torch import Tensor, nn

from .merge_maps import _as_batch, _backbone, _eval_mode, _geometry


def _transition(assign: Tensor, sizes_in: Tensor) -> Tensor:
    """How each output token of a merge is made of its input tokens.

    STTM's output ``k`` is ``sum_l assign[l, k] * size_l * x_l / size_k``
    (eq. 4, columns normalised with the sizes), and ToMe's and the pooling
    mergers' outputs are size-weighted group means, so the row of output
    ``k`` is the size-weighted column ``k`` of the assignment. (EViT's fused
    token and RandomDrop weigh their groups differently; for them this is an
    approximation that still sends every input's relevance somewhere.)

    Args:
        assign (Tensor): The merge's row-stochastic assignment of one sample
            ``(L, L')`` (block-diagonal for a spatial merge).
        sizes_in (Tensor): Input sizes ``(L,)``.

    Returns:
        Tensor: ``(L', L)``, rows sum to one.
    """
    mass = assign.float() * sizes_in.float().unsqueeze(1)
    return (mass / mass.sum(dim=0, keepdim=True)).T


@torch.no_grad()
def attention_rollout(model: nn.Module,
                      clip: Tensor,
                      residual: float = 0.5) -> Tensor:
    """Attention rollout, carried through the merges to the input patches.

    Abnar & Zuidema's rollout: every block's attention averaged over heads,
    mixed with the identity for the residual connection
    (``residual * I + (1 - residual) * A``, rows renormalised), multiplied
    from the first block to the last. Here the product runs on a matrix
    ``R`` from the current tokens to the *input* tokens, so merges are
    steps of the same product: after a merge ``R <- M R`` with ``M`` the
    merger's own assignment (see :func:`_transition`), which is exact for
    STTM and ToMe. With a CLS token the result is its row of ``R``; without
    one (VideoMAE) the size-weighted mean of the rows of the final tokens,
    which is what the size-weighted mean pooling classifies.

    Each block's attention is the family's own (``block_attention`` of
    :class:`~mmaction_sttm.models.backbones.base.MergingBackbone`),
    recomputed in eval mode beside the fused kernels. TimeSformer's
    divided blocks enter by their spatial attention only, as is usual for
    TimeSformer rollout.

    Args:
        model (nn.Module): A recognizer with a merging backbone, or the
            backbone itself.
        clip (Tensor): One clip ``(C, T, H, W)`` or ``(1, C, T, H, W)``.
        residual (float): Weight of the identity. Defaults to 0.5.

    Returns:
        Tensor: ``(T, H', W')`` relevance of every input patch of every
        input frame (a tubelet's value repeats over its frames), scaled to
        a maximum of one, on the CPU.
    """
    if not 0 <= residual <= 1:
        raise ValueError(f'residual must be in [0, 1], got {residual!r}')
    backbone = _backbone(model)
    clip = _as_batch(clip, backbone)
    with _eval_mode(backbone):
        trace = backbone.forward_trace(clip)
    stages = trace.stages
    has_cls = backbone.geometry.has_cls
    geometry = _geometry(backbone, clip, stages[0])
    schedule = backbone.merge_schedule
    layers = schedule.layers if schedule is not None else ()
    extra = int(has_cls)
    rollout = torch.eye(stages[0].x.shape[1] + extra)
    done = 0
    for layer, attn in enumerate(trace.attention, start=1):
        attn = attn[0].float().cpu()
        eye = torch.eye(attn.shape[0])
        attn = residual * eye + (1 - residual) * attn
        attn = attn / attn.sum(dim=-1, keepdim=True)
        rollout = attn @ rollout
        if layer in layers:
            step = _transition(stages[done + 1].assign[0].cpu(),
                               stages[done].sizes[0].cpu())
            if has_cls:
                step = torch.block_diag(torch.ones(1, 1), step)
            rollout = step @ rollout
            done += 1
    if has_cls:
        relevance = rollout[0, 1:]
    else:
        sizes = stages[-1].sizes[0].float().cpu()
        relevance = (sizes / sizes.sum()) @ rollout
    relevance = relevance / relevance.max().clamp(min=1e-12)
    heat = relevance.reshape(geometry['grid'])
    return heat.repeat_interleave(geometry['tubelet'], dim=0)
