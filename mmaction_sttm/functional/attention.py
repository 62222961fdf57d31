"""Attention for batches of videos with different token counts: the one
attention function of every family, its biases, and the packed layout.

A batch whose videos keep different numbers of tokens (after RLT) runs in
one of two layouts, the backbone's ``batching``:

- ``'padded'``: ``(B, N, D)``, each video's real tokens first; attention
  takes an additive key bias, ``-inf`` on padding (:func:`padding_bias`);
- ``'packed'``: the token-wise layers (norms, QKV, projection, MLP) run on
  the real rows only, ``(1, n, D)`` with ``n = sum(n_b)``
  (:class:`Packing`); attention keeps each video to itself, by a kernel
  chosen per device (:data:`PACKED_KERNELS`).

Under ``torch.compile`` the backbone does not pack (finding the real rows is
a data-dependent ``nonzero``, which would break the graph inside the block
loop): a packed backbone runs the padded layout there, one graph for any
set of lengths.
"""
import importlib
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

#: The packed attention kernel per device type, and why (measured with
#: ``tools/analysis_tools/attention_bench.py``; see ``docs/benchmark.md``):
#:
#: - ``'bucketed'``: the videos sorted by length into at most
#:   :data:`MAX_BUCKETS` buckets of similar lengths (the split that
#:   minimises ``sum b_g N_g^2``, the fewest buckets within 5% of it), one
#:   SDPA call per bucket on its videos padded to the bucket's longest:
#:   close to the per-video cost ``sum n_b^2``, in a bounded number of
#:   calls whatever the batch size.
#: - ``'padded'``: one bucket: the packed queries, keys and values laid
#:   out as the padded batch for one SDPA call with the padding masked, and
#:   packed again; attention costs the padded batch's ``B N^2``.
#: - ``'nested'``: one SDPA call on nested jagged tensors (each video its
#:   own length; the variable-length flash / memory-efficient kernels on
#:   CUDA); no additive bias (not with proportional attention).
#: - ``'flex'``: FlexAttention (torch >= 2.5) with a document mask, compiled
#:   once per device; no dropout.
#: - ``'dense'``: one SDPA call on the whole packed sequence with the
#:   ``(n, n)`` block-diagonal bias (``n^2``: for checks, and for blocks that
#:   do not attend through :func:`attention`).
#:
#: A case the chosen kernel cannot run (a bias for ``'nested'``, dropout for
#: ``'flex'``) runs ``'bucketed'``.
PACKED_KERNELS: Dict[str, Tuple[str, str]] = {
    'cpu': ('bucketed', 'attention_bench.py, CPU, torch 2.9.1, 1 thread, '
            'ViT-S heads, 8 videos of 850-1568 tokens (32 in brackets): one '
            'call per video 211 ms (892), bucketed 246 (1,063), padded '
            'layout 365 (1,505), FlexAttention 736 (3,162) plus 607 '
            '(18,837) for its block mask, nested jagged 2,678 (20,630: the '
            'math fallback), dense 2,144; PyTorch has no variable-length '
            'CPU kernel, and length buckets come within 1.2x of the '
            'per-video cost without a call per video'),
    'cuda': ('nested', 'not measured yet (no GPU has run the benchmark): '
             'nested jagged tensors reach the variable-length flash kernel '
             'that the RLT authors use through xformers; '
             'tools/analysis/gpu_check.sh times every kernel'),
}
KERNELS = ('bucketed', 'padded', 'nested', 'flex', 'dense')
#: The most buckets of the ``'bucketed'`` kernel.
MAX_BUCKETS = 4


def available(kernel: str) -> bool:
    """Whether this torch has what packed attention ``kernel`` needs
    (nested jagged tensors: torch >= 2.3; FlexAttention: torch >= 2.5)."""
    if kernel == 'nested':
        return hasattr(torch.nested, 'nested_tensor_from_jagged')
    if kernel == 'flex':
        try:
            importlib.import_module('torch.nn.attention.flex_attention')
        except ImportError:
            return False
    return True


def compiling() -> bool:
    """Whether ``torch.compile`` is tracing (torch >= 2.3 names it in
    ``torch.compiler``; 2.1-2.2 only in ``torch._dynamo``)."""
    check = getattr(torch.compiler, 'is_compiling', None)
    if check is None:
        from torch import _dynamo
        check = _dynamo.is_compiling
    return bool(check())


def proportional_bias(sizes: Tensor, with_cls: bool,
                      dtype: torch.dtype) -> Tensor:
    """Additive attention bias ``log(size)`` of the keys (ToMe's
    proportional attention), shaped ``(B, 1, 1, L)`` to broadcast over heads
    and queries; the CLS token counts as size one, padding (size zero) is
    ``-inf``."""
    bias = sizes.log()
    if with_cls:
        bias = torch.cat([bias.new_zeros(bias.shape[0], 1), bias], dim=1)
    return bias.to(dtype)[:, None, None, :]


def padding_bias(valid: Tensor, with_cls: bool, dtype: torch.dtype) -> Tensor:
    """Additive attention bias ``(B, 1, 1, [1 +] L)`` that masks the padded
    keys of a batch of videos with different token counts
    (:meth:`~mmaction_sttm.functional.tokens.Tokens.valid`): ``-inf`` on
    padding, zero elsewhere."""
    bias = torch.zeros_like(
        valid, dtype=dtype).masked_fill(~valid, float('-inf'))
    if with_cls:
        bias = torch.cat([bias.new_zeros(bias.shape[0], 1), bias], dim=1)
    return bias[:, None, None, :]


def attention_probs(q: Tensor,
                    k: Tensor,
                    scale: float,
                    bias: Optional[Tensor] = None) -> Tensor:
    """Softmax attention ``(B, H, Nq, N)`` of queries ``(B, H, Nq, d)`` on
    keys ``(B, H, N, d)``, in float32 (it ranks or weighs tokens)."""
    with torch.autocast(q.device.type, enabled=False):
        logits = torch.matmul(q.float(), k.float().transpose(-2, -1)) * scale
        if bias is not None:
            logits = logits + bias.float()
        return logits.softmax(dim=-1)


class Bucket(NamedTuple):
    """Videos of similar lengths, padded to the longest ``N`` of them, for
    one attention call of a packed batch.

    Args:
        rows (Tensor): The packed row of each padded position ``(b N,)``
            (row 0 on padding).
        videos (int): ``b``.
        real (Tensor, optional): The positions that are real rows ``(r,)``.
        keys (Tensor, optional): The additive key bias ``(b, 1, 1, N)``.
            ``real`` and ``keys`` are None for videos of equal lengths
            without proportional attention: no padding, nothing to mask
            (SDPA's unmasked path).
    """
    rows: Tensor
    videos: int
    real: Optional[Tensor] = None
    keys: Optional[Tensor] = None


class Packing:
    """A padded batch ``(B, N, D)`` as one sequence ``(1, n, D)`` of its
    real rows, ``n = sum(n_b)``.

    Built once per stage (where the token counts change), in eager mode
    only; the blocks then pack and unpack with index ops of fixed shape
    (``index_select`` / ``index_copy``).

    Args:
        rows (Tensor): ``(B, N)`` bool, the real rows of the sequence (CLS
            included), each video's first.
        bias (Tensor): The padded batch's key bias ``(B, 1, 1, N)``.
        weighted (bool): Whether ``bias`` weighs the real keys too
            (proportional attention), not only masks the padding.
        kernel (str, optional): The packed attention kernel (one of
            :data:`KERNELS`); None takes :data:`PACKED_KERNELS` of the
            device.
    """

    def __init__(self,
                 rows: Tensor,
                 bias: Tensor,
                 weighted: bool = False,
                 kernel: Optional[str] = None) -> None:
        if kernel is None:
            kernel = PACKED_KERNELS.get(rows.device.type, ('bucketed', ''))[0]
            if not available(kernel):
                kernel = 'bucketed'
        elif not available(kernel):
            raise ValueError(f'packed attention kernel {kernel!r} needs a '
                             f'newer torch than {torch.__version__}')
        if kernel not in KERNELS:
            raise ValueError(
                f'packed attention kernel must be one of {KERNELS}, got '
                f'{kernel!r}')
        self.shape = tuple(rows.shape)
        self.index = rows.flatten().nonzero().squeeze(1)
        self.weighted = weighted
        self.kernel = kernel
        self.keys = bias[:, 0, 0].flatten().index_select(0, self.index)
        counts = rows.sum(dim=1)
        self.counts = counts
        self.offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        self._block_mask = None
        self._buckets = {}

    @property
    def video(self) -> Tensor:
        """``(n,)`` the video of each packed row."""
        return torch.div(self.index, self.shape[1], rounding_mode='floor')

    @property
    def dense_bias(self) -> Tensor:
        """The block-diagonal bias ``(1, 1, n, n)``: ``-inf`` between
        videos, the key bias within one."""
        video = self.video
        same = video[:, None] == video[None, :]
        return torch.where(same, self.keys[None, :],
                           self.keys.new_tensor(float('-inf')))[None, None]

    def pack(self, x: Tensor) -> Tensor:
        """``(B, N, ...)`` -> ``(1, n, ...)``, real rows only."""
        return x.flatten(0, 1).index_select(0, self.index)[None]

    def unpack(self, x: Tensor) -> Tensor:
        """``(1, n, ...)`` -> ``(B, N, ...)``, zeros on padding."""
        rest = tuple(x.shape[2:])
        out = x.new_zeros(self.shape[0] * self.shape[1], *rest)
        return out.index_copy(0, self.index, x[0]).view(*self.shape, *rest)

    def unpack_heads(self, x: Tensor) -> Tensor:
        """Queries or keys ``(1, H, n, d)`` -> ``(B, H, N, d)``."""
        return self.unpack(x.transpose(1, 2)).transpose(1, 2)

    def buckets(self, most: int) -> List['Bucket']:
        """The videos in at most ``most`` buckets of similar lengths (see
        ``'bucketed'`` in :data:`PACKED_KERNELS`), built once per stage.

        Returns:
            list[Bucket]: The buckets.
        """
        if most not in self._buckets:
            order = torch.argsort(self.counts, stable=True)
            lengths = self.counts.index_select(0, order).tolist()
            out = []
            for start, stop in length_buckets(lengths, most):
                videos = order[start:stop]
                longest = lengths[stop - 1]
                place = torch.arange(longest, device=order.device)
                valid = place[None] < self.counts.index_select(0, videos)[:,
                                                                          None]
                rows = self.offsets.index_select(0, videos)[:, None] + place
                rows = torch.where(valid, rows, 0).flatten()
                if lengths[start] == longest and not self.weighted:
                    out.append(Bucket(rows, stop - start))
                    continue
                keys = self.keys.index_select(0, rows).view(valid.shape)
                keys = keys.masked_fill(~valid, float('-inf'))
                out.append(
                    Bucket(rows, stop - start,
                           valid.flatten().nonzero().squeeze(1),
                           keys[:, None, None, :]))
            self._buckets[most] = out
        return self._buckets[most]

    def block_mask(self, device: torch.device):
        """FlexAttention's document mask of the packed rows (built once per
        stage)."""
        if self._block_mask is None:
            from torch.nn.attention.flex_attention import create_block_mask
            video = self.video

            def same_video(b, h, q_idx, kv_idx):
                return video[q_idx] == video[kv_idx]

            n = int(self.index.numel())
            self._block_mask = create_block_mask(
                same_video, None, None, n, n, device=device)
        return self._block_mask


class PackedBias(NamedTuple):
    """The attention bias of a packed batch for blocks that attend through
    :func:`attention`: its :class:`Packing`."""
    packing: Packing


#: What a block's attention takes: an additive bias ``(B, 1, 1, N)`` (or
#: a dense ``(1, 1, n, n)`` block-diagonal one), a :class:`PackedBias` for
#: a packed batch, or None.
AttentionBias = Union[Tensor, PackedBias, None]

_FLEX: Dict[str, Callable] = {}


def _flex_attention(device: torch.device) -> Callable:
    """FlexAttention, compiled once per device type (its eager form
    materialises every score); with dynamic shapes on CUDA, static on CPU
    (torch 2.9's CPU code generation for dynamic shapes fails to compile)."""
    if device.type not in _FLEX:
        from torch.nn.attention.flex_attention import flex_attention
        _FLEX[device.type] = torch.compile(
            flex_attention, dynamic=device.type == 'cuda')
    return _FLEX[device.type]


def attention(q: Tensor,
              k: Tensor,
              v: Tensor,
              bias: AttentionBias = None,
              dropout_p: float = 0.,
              scale: Optional[float] = None) -> Tensor:
    """Scaled dot-product attention of queries, keys and values
    ``(B, H, N, d)``: ``F.scaled_dot_product_attention`` with an additive
    key bias; for a packed batch (``bias`` a :class:`PackedBias`, ``B = 1``)
    each video attends to its own rows only, through the packing's kernel
    (:data:`PACKED_KERNELS`), in one call for the whole batch.

    Args:
        q, k, v (Tensor): Queries, keys, values.
        bias (Tensor | PackedBias, optional): See :data:`AttentionBias`.
        dropout_p (float): Attention dropout. Defaults to 0.
        scale (float, optional): Logit scale; None for ``d ** -0.5``.

    Returns:
        Tensor: ``(B, H, N, d)``.
    """
    if not isinstance(bias, PackedBias):
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=dropout_p, scale=scale)
    packing = bias.packing
    kernel = packing.kernel
    if (kernel == 'nested' and packing.weighted) or (kernel == 'flex'
                                                     and dropout_p > 0):
        kernel = 'bucketed'
    if kernel == 'dense':
        return F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=packing.dense_bias.to(q.dtype),
            dropout_p=dropout_p,
            scale=scale)
    if kernel == 'nested':
        return _nested(q, k, v, packing.offsets, dropout_p, scale)
    if kernel == 'flex':
        keys = packing.keys.to(q.dtype)

        def key_bias(score, b, h, q_idx, kv_idx):
            return score + keys[kv_idx]

        return _flex_attention(q.device)(
            q,
            k,
            v,
            score_mod=key_bias if packing.weighted else None,
            block_mask=packing.block_mask(q.device),
            scale=scale)
    most = 1 if kernel == 'padded' else MAX_BUCKETS
    out = torch.empty_like(q)
    heads, dims = q.shape[1], q.shape[-1]
    for rows, videos, real, keys in packing.buckets(most):

        def padded(x: Tensor) -> Tensor:  # (1, H, n, d) -> (b, H, N, d)
            return x[0].index_select(1, rows).view(heads, videos, -1,
                                                   dims).transpose(0, 1)

        part = F.scaled_dot_product_attention(
            padded(q),
            padded(k),
            padded(v),
            attn_mask=None if keys is None else keys.to(q.dtype),
            dropout_p=dropout_p,
            scale=scale)
        part = part.transpose(0, 1).reshape(heads, -1, dims)
        if real is None:
            out[0].index_copy_(1, rows, part)
        else:
            out[0].index_copy_(1, rows.index_select(0, real),
                               part.index_select(1, real))
    return out


def length_buckets(lengths: List[int], most: int) -> List[Tuple[int, int]]:
    """Contiguous groups of the sorted ``lengths``: the fewest groups
    (up to ``most``) whose attention cost ``sum b_g N_g^2`` (``N_g`` the
    group's longest) is within 5% of the least over ``most`` groups."""
    count = len(lengths)
    # best[k][i]: least cost of the first i videos in k groups, and where
    # the last group starts.
    inf = float('inf')
    best = [[(inf, 0)] * (count + 1) for _ in range(most + 1)]
    best[0][0] = (0.0, 0)
    for k in range(1, most + 1):
        for i in range(1, count + 1):
            best[k][i] = min(
                (best[k - 1][j][0] + (i - j) * lengths[i - 1]**2, j)
                for j in range(i))
    least = min(best[k][count][0] for k in range(1, most + 1))
    groups = next(
        k for k in range(1, most + 1) if best[k][count][0] <= 1.05 * least)
    bounds, stop = [], count
    for k in range(groups, 0, -1):
        start = best[k][stop][1]
        bounds.append((start, stop))
        stop = start
    return bounds[::-1]


def _nested(q: Tensor, k: Tensor, v: Tensor, offsets: Tensor, dropout_p: float,
            scale: Optional[float]) -> Tensor:
    """Packed attention ``(1, H, n, d)`` on nested jagged tensors."""

    def jagged(x: Tensor) -> Tensor:  # (1, H, n, d) -> (B, H, j, d)
        values = x[0].transpose(0, 1).contiguous()
        return torch.nested.nested_tensor_from_jagged(values,
                                                      offsets).transpose(1, 2)

    out = F.scaled_dot_product_attention(
        jagged(q), jagged(k), jagged(v), dropout_p=dropout_p, scale=scale)
    return out.transpose(1, 2).values().transpose(0, 1)[None]
