"""Attention rollout through token merges.

Abnar & Zuidema's attention rollout (ACL 2020) asks which input tokens the
output was computed from. :func:`attention_rollout` runs it on the merging
backbones, with the merges as steps of the same matrix product, so the
answer is always over the input patches.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmaction_sttm.merging.tokens import Tokens
from mmaction_sttm.models.backbones import (TimeSformerSTTM,
                                            VisionTransformerSTTM)
from mmaction_sttm.models.sttm import proportional_bias
from .merge_maps import _as_batch, _backbone, _eval_mode, _geometry, _has_cls


def _attention_probs(q: Tensor, k: Tensor, scale: float,
                     bias: Optional[Tensor]) -> Tensor:
    """``softmax(q k^T * scale + bias)`` averaged over heads.

    Args:
        q (Tensor): ``(B, heads, N, d)``.
        k (Tensor): ``(B, heads, N, d)``.
        scale (float): Logit scale.
        bias (Tensor, optional): Additive bias broadcastable to
            ``(B, heads, N, N)``.

    Returns:
        Tensor: ``(B, N, N)``, rows sum to one.
    """
    logits = torch.einsum('bhqd,bhkd->bhqk', q.float(), k.float()) * scale
    if bias is not None:
        logits = logits + bias.float()
    return logits.softmax(dim=-1).mean(dim=1)


def _qkv_attention(attn: nn.Module, x: Tensor,
                   bias: Optional[Tensor]) -> Tensor:
    """Attention weights of a timm-style attention module (a fused ``qkv``
    linear layer and ``num_heads``) on batch-first ``x`` ``(B, N, D)``.

    Covers ``SpaceTimeViT``'s ``Attention``, MMAction2's VideoMAE
    ``Attention`` (separate q / v biases, ``scale``), timm's (``q_norm`` /
    ``k_norm``) and mmpretrain's ``MultiheadAttention``.
    """
    batch, length, _ = x.shape
    if getattr(attn, 'q_bias', None) is not None:
        qkv_bias = torch.cat(
            (attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias))
        qkv = F.linear(x, attn.qkv.weight, qkv_bias)
    else:
        qkv = attn.qkv(x)
    q, k, _ = qkv.reshape(batch, length, 3, attn.num_heads,
                          -1).permute(2, 0, 3, 1, 4).unbind(0)
    q = getattr(attn, 'q_norm', nn.Identity())(q)
    k = getattr(attn, 'k_norm', nn.Identity())(k)
    scale = getattr(attn, 'scale', None) or q.shape[-1]**-0.5
    return _attention_probs(q, k, float(scale), bias)


def _mha_attention(attn: nn.MultiheadAttention, x: Tensor,
                   mask: Optional[Tensor]) -> Tensor:
    """Attention weights of a sequence-first ``nn.MultiheadAttention`` on
    ``x`` ``(N, B, D)`` with an optional float mask ``(B * heads, N, N)``;
    returns ``(B, N, N)``."""
    if getattr(attn, 'batch_first', False):
        x = x.transpose(0, 1)
    length, batch, dims = x.shape
    heads = attn.num_heads
    q, k, _ = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1)
    q, k = (t.reshape(length, batch, heads, dims // heads).permute(1, 2, 0, 3)
            for t in (q, k))
    if mask is not None:
        mask = mask.reshape(batch, heads, length, length)
    return _attention_probs(q, k, (dims // heads)**-0.5, mask)


def _joint_from_divided(per_frame: Tensor, frames: int) -> Tensor:
    """One ``(1 + T*N)``-token attention matrix from TimeSformer's per-frame
    spatial attention.

    Each frame attends over ``[CLS, its N patches]``; TimeSformer then
    averages the CLS outputs of the frames. So a patch row of the joint
    matrix is its frame's row, and the CLS row is the mean over frames of
    the per-frame CLS rows; rows still sum to one.

    Args:
        per_frame (Tensor): ``(B * T, 1 + N, 1 + N)``, frames of a sample
            consecutive.
        frames (int): ``T``.

    Returns:
        Tensor: ``(B, 1 + T*N, 1 + T*N)``, patches frame-major.
    """
    batch = per_frame.shape[0] // frames
    num = per_frame.shape[-1] - 1
    per_frame = per_frame.reshape(batch, frames, num + 1, num + 1)
    out = per_frame.new_zeros(batch, 1 + frames * num, 1 + frames * num)
    out[:, 0, 0] = per_frame[:, :, 0, 0].mean(1)
    out[:, 0, 1:] = per_frame[:, :, 0, 1:].reshape(batch, -1) / frames
    for t in range(frames):
        rows = slice(1 + t * num, 1 + (t + 1) * num)
        out[:, rows, 0] = per_frame[:, t, 1:, 0]
        out[:, rows, rows] = per_frame[:, t, 1:, 1:]
    return out


class _AttentionRecorder:
    """Forward hooks that record, per block, what is needed to recompute its
    attention weights (the backbones use fused kernels that return none),
    and, per merge, the merger's assignment matrix.

    The family-specific part is only *where* a block's attention input is:

    - ``SpaceTimeViT`` and the image ViT wrappers: the input of
      ``blocks[i].attn`` (pre-hook; the attention bias is its second
      argument or ``attn_mask``);
    - ``VisionTransformerSTTM``: its blocks are run by a function, not
      called as modules, so the output of ``blocks[i].norm1`` is the
      attention input; the proportional bias is rebuilt from the sizes;
    - ``TimeSformerSTTM``: the input of the spatial
      ``nn.MultiheadAttention`` of each block (its temporal attention is
      skipped, see :func:`attention_rollout`).
    """

    def __init__(self, backbone: nn.Module) -> None:
        self.backbone = backbone
        self.handles: List = []
        self.inputs: List[Tuple[str, Tensor, Optional[Tensor]]] = []
        self.assign: Dict[int, Tensor] = {}
        self._pending: Dict[int, Optional[Tensor]] = {}
        if isinstance(backbone, TimeSformerSTTM):
            self.kind = 'timesformer'
            for layer in backbone.transformer_layers.layers:
                self._hook_pre(layer.attentions[-1].attn, 'mha')
        elif isinstance(backbone, VisionTransformerSTTM):
            self.kind = 'videomae'
            for block in backbone.blocks:
                self.handles.append(
                    block.norm1.register_forward_hook(self._on_norm))
        elif hasattr(backbone, 'blocks') and all(
                hasattr(getattr(b, 'attn', None), 'qkv')
                for b in backbone.blocks):
            self.kind = 'qkv'
            for block in backbone.blocks:
                self._hook_pre(block.attn, 'qkv')
        else:
            raise TypeError(f'attention rollout does not know where the '
                            f'attention of {type(backbone).__name__} is')
        schedule = getattr(backbone, 'merge', None)
        if schedule is not None:
            for key, merger in schedule.mergers.items():
                self.handles.append(
                    merger.register_forward_pre_hook(
                        self._substitute, with_kwargs=True))
                self.handles.append(
                    merger.register_forward_hook(
                        self._make_restore(int(key)), with_kwargs=True))

    def _hook_pre(self, module: nn.Module, kind: str) -> None:

        def hook(mod, args, kwargs):
            bias = args[1] if len(args) > 1 and kind == 'qkv' else None
            bias = kwargs.get('attn_mask', kwargs.get('bias', bias))
            self.inputs.append((kind, args[0].detach(), bias))

        self.handles.append(
            module.register_forward_pre_hook(hook, with_kwargs=True))

    def _on_norm(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        self.inputs.append(('qkv', output.detach(), None))

    # A merger carries the source map it is given: sources_out =
    # sources_in @ assign (STTM's bmm, the hard mergers' one-hot scatter).
    # Handing it an identity map therefore returns ``assign`` itself, the
    # row-stochastic matrix from its L inputs to its L' outputs; the restore
    # hook then gives the schedule the map it would have got.
    def _substitute(self, module: nn.Module, args: tuple,
                    kwargs: dict) -> Tuple[tuple, dict]:
        args = list(args)
        x = args[0]
        eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device).expand(
            x.shape[0], -1, -1)
        if len(args) > 4:
            self._pending[id(module)] = args[4]
            args[4] = eye
        else:
            self._pending[id(module)] = kwargs.get('sources')
            kwargs['sources'] = eye
        return tuple(args), kwargs

    def _make_restore(self, layer: int):

        def hook(module, args, kwargs, output):
            assign = output[3]
            self.assign[layer] = assign.detach()
            given = self._pending.pop(id(module))
            sources = None if given is None else torch.bmm(given, assign)
            return (*output[:3], sources)

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def matrices(self, stages: List[Tokens], has_cls: bool) -> List[Tensor]:
        """Each block's head-averaged attention ``(N, N)`` of sample 0, in
        the token order of :class:`Tokens` (CLS first when present)."""
        backbone = self.backbone
        schedule = getattr(backbone, 'merge', None)
        layers = schedule.layers if schedule is not None else ()
        first_merge = layers[0] if layers else None
        out = []
        for index, (kind, x, bias) in enumerate(self.inputs):
            layer = index + 1
            done = sum(1 for m in layers if m < layer)  # merges before it
            if self.kind == 'timesformer':
                attn = backbone.transformer_layers.layers[index]
                attn = attn.attentions[-1].attn
                probs = _mha_attention(attn, x, bias)
                if first_merge is None or layer <= first_merge:
                    probs = _joint_from_divided(probs, stages[0].frames)
            elif self.kind == 'videomae':
                sizes = stages[done].sizes
                if backbone.prop_attn and sizes is not None:
                    bias = proportional_bias(sizes, False, x.dtype)
                probs = _qkv_attention(backbone.blocks[index].attn, x, bias)
            else:
                probs = _qkv_attention(backbone.blocks[index].attn, x, bias)
            expected = stages[done].x.shape[1] + int(has_cls)
            if probs.shape[-1] != expected:
                raise RuntimeError(f'block {layer}: recorded attention over '
                                   f'{probs.shape[-1]} tokens, expected '
                                   f'{expected}')
            out.append(probs[0])
        return out


def _transition(assign: Tensor, sizes_in: Tensor, frames: int) -> Tensor:
    """How each output token of a merge is made of its input tokens.

    STTM's output ``k`` is ``sum_l assign[l, k] * size_l * x_l / size_k``
    (eq. 4, columns normalised with the sizes), and ToMe's and the pooling
    mergers' outputs are size-weighted group means, so the row of output
    ``k`` is the size-weighted column ``k`` of the assignment. (EViT's fused
    token and RandomDrop weigh their groups differently; for them this is an
    approximation that still sends every input's relevance somewhere.)

    Args:
        assign (Tensor): The merger's row-stochastic assignment of sample 0,
            ``(F, L/F, L'/F)`` for a spatial merge of ``F`` frame groups or
            ``(1, L, L')``.
        sizes_in (Tensor): Input sizes ``(L,)``.
        frames (int): ``F``, the number of frame-group blocks in ``assign``.

    Returns:
        Tensor: ``(L', L)``, rows sum to one.
    """
    full = torch.block_diag(*assign[:frames].float())
    mass = full * sizes_in.float().unsqueeze(1)
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

    Approximations, documented because they shape the picture:

    - the fused attention kernels return no weights, so each block's
      attention is recomputed from its input, captured by a forward hook
      (eval mode: no dropout, so the recomputation is the model's attention);
    - ``TimeSformerSTTM``: in divided blocks only the spatial (per-frame)
      attention enters the product and the temporal attention is skipped,
      as is usual for TimeSformer rollout; blocks after the first merge run
      one joint attention and enter as they are.

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
    recorder = _AttentionRecorder(backbone)
    try:
        with _eval_mode(backbone):
            sequence, stages = backbone.forward_tokens(clip)
    finally:
        recorder.remove()
    has_cls = _has_cls(sequence, stages[-1])
    geometry = _geometry(backbone, clip, stages[0])
    matrices = recorder.matrices(stages, has_cls)
    schedule = getattr(backbone, 'merge', None)
    extra = int(has_cls)
    rollout = torch.eye(stages[0].x.shape[1] + extra)
    done = 0
    for layer, attn in enumerate(matrices, start=1):
        attn = attn.cpu()
        eye = torch.eye(attn.shape[0])
        attn = residual * eye + (1 - residual) * attn
        attn = attn / attn.sum(dim=-1, keepdim=True)
        rollout = attn @ rollout
        if layer in recorder.assign:
            before = stages[done]
            sizes = (torch.ones(before.x.shape[1]) if before.sizes is None
                     else before.sizes[0].cpu())
            spatial = schedule.stages[done] == 'spatial'
            step = _transition(recorder.assign[layer].cpu(), sizes,
                               before.frames if spatial else 1)
            if has_cls:
                step = torch.block_diag(torch.ones(1, 1), step)
            rollout = step @ rollout
            done += 1
    if has_cls:
        relevance = rollout[0, 1:]
    else:
        final = stages[-1]
        sizes = (torch.ones(final.x.shape[1]) if final.sizes is None else
                 final.sizes[0].float().cpu())
        relevance = (sizes / sizes.sum()) @ rollout
    relevance = relevance / relevance.max().clamp(min=1e-12)
    heat = relevance.reshape(geometry['grid'])
    return heat.repeat_interleave(geometry['tubelet'], dim=0)
