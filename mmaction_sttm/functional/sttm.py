"""The STTM merging algorithm (Feng et al., TOMM 2024, section 3.2).

Pure functions over tensors, with no framework in them. The registered
``nn.Module`` in :mod:`mmaction_sttm.models.mergers.sttm` holds the learned
parts (the encoder ``phi`` and the fusion layer) and calls these.

Shapes: ``B`` samples (or frames, for the spatial stage), ``L`` input tokens,
``k`` output (meta) tokens, ``D`` channels.
"""
import logging
import math
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import greedy_triton
from .groups import active, descending


def num_meta_tokens(num_tokens: int, ratio: float) -> int:
    """Output count ``L' = round(L * (1 - ratio))`` of one merge (eq. 1).

    Halves round up (``floor(L * (1 - ratio) + 1/2)``), not to the even
    neighbour as Python's ``round`` does, so that L=5 and L=7 at ratio 0.5
    give 3 and 4 (not 2 and 4). Every merger counts its outputs with this.

    Args:
        num_tokens (int): Input count ``L``.
        ratio (float): Merge ratio ``rho`` in (0, 1).

    Returns:
        int: The number of meta (output) tokens, at least 1.
    """
    return max(1, math.floor(num_tokens * (1.0 - ratio) + 0.5))


def num_candidates(num_tokens: int, num_meta: int, alpha: float) -> int:
    """Number of greedy candidates ``min(L, ceil(alpha * L'))`` (sec. 3.2.1).

    Args:
        num_tokens (int): Input count ``L``.
        num_meta (int): Meta-token count ``L'``.
        alpha (float): Over-selection factor (1.5 in the paper).

    Returns:
        int: Number of candidates the greedy selection picks.
    """
    return min(num_tokens, int(math.ceil(alpha * num_meta - 1e-9)))


@torch.no_grad()
def most_orthogonal_select(x_norm: Tensor, num: int, start: Tensor) -> Tensor:
    """Greedy most-orthogonal selection (eq. 3, after Motionformer).

    Starting from ``start``, repeatedly picks the token whose largest absolute
    cosine similarity to the tokens already picked is the smallest. A running
    maximum over the picked set keeps every step O(L): the pairwise
    similarities are one batched matrix product, and a step is an argmin, a
    row gather and an in-place maximum, batched over all samples (and frames).
    The step loop is one opaque operator (:func:`greedy_select`): under
    ``torch.compile`` it is a single node of the graph, neither a graph break
    nor hundreds of unrolled steps.

    Args:
        x_norm (Tensor): L2-normalised tokens ``(B, L, D)``.
        num (int): Number of tokens to pick (``<= L``).
        start (Tensor): First pick per sample ``(B,)`` (long).

    Returns:
        Tensor: Picked indices ``(B, num)`` in the order they were picked.
    """
    length = x_norm.shape[1]
    if num > length:
        raise ValueError(f'cannot pick {num} tokens out of {length}')
    # |cos| between all pairs, computed in float32 with autocast off: under
    # autocast a half-precision bmm would round the similarities before any
    # cast, and bf16 could then pick other tokens than fp32. An infinite
    # diagonal makes a picked token's running maximum infinite, so it is
    # never picked again (even among exact duplicates).
    sim = fp32_bmm(x_norm, x_norm.transpose(1, 2)).abs_()
    sim.diagonal(dim1=1, dim2=2).fill_(float('inf'))
    return greedy_select(sim, start.to(torch.long), num)


def _greedy_select(sim: Tensor, start: Tensor, num: int) -> Tensor:
    """The step loop of :func:`most_orthogonal_select` on a prepared
    similarity matrix, wherever it is cheapest:

    - CUDA with Triton: one kernel launch
      (:mod:`~mmaction_sttm.functional.greedy_triton`);
    - CPU: a numpy loop (a numpy step costs about a microsecond of
      overhead, a torch step several; the loop is all overhead at these
      sizes);
    - elsewhere: the same loop in torch.

    All three pick the same indices (argmin ties go to the lowest index).

    Args:
        sim (Tensor): ``|cos|`` between tokens ``(B, L, L)``, float32, with
            an infinite diagonal.
        start (Tensor): First pick per sample ``(B,)`` (long).
        num (int): Number of picks, ``1 <= num <= L``.

    Returns:
        Tensor: Picked indices ``(B, num)`` (long) in the order picked.
    """
    if greedy_triton.supports(sim):
        try:
            return greedy_triton.greedy_select(sim, start, num)
        except Exception as error:  # noqa: BLE001  (compiler / driver)
            greedy_triton.disable(error)
    if sim.device.type == 'cpu':
        return greedy_select_numpy(sim, start, num)
    return greedy_select_torch(sim, start, num)


def _greedy_select_shape(sim: Tensor, start: Tensor, num: int) -> Tensor:
    return sim.new_empty((sim.shape[0], num), dtype=torch.long)


_compile_note_given = False


def _greedy_select_graph_break(sim: Tensor, start: Tensor, num: int) -> Tensor:
    """:func:`_greedy_select` for torch < 2.4 (no ``torch.library.custom_op``).

    Same picks; under ``torch.compile`` the step loop is then a graph break
    instead of one node of the graph. Says so once, in one line (MMEngine's
    logger).
    """
    global _compile_note_given
    if not _compile_note_given:
        _compile_note_given = True
        from mmengine.logging import print_log
        print_log(
            f'torch {torch.__version__} has no torch.library.custom_op '
            '(torch >= 2.4): under torch.compile the greedy meta-token '
            'selection of STTM runs as a graph break (same results).',
            logger='current',
            level=logging.WARNING)
    return _greedy_select(sim, start, num)


if hasattr(torch.library, 'custom_op'):
    greedy_select = torch.library.custom_op(
        'mmaction_sttm::greedy_select', mutates_args=())(
            _greedy_select)
    greedy_select.register_fake(_greedy_select_shape)
else:  # torch < 2.4: dynamo does not trace into it (a graph break)
    greedy_select = torch.compiler.disable(_greedy_select_graph_break)
greedy_select.__doc__ = _greedy_select.__doc__


def greedy_select_torch(sim: Tensor, start: Tensor, num: int) -> Tensor:
    """:func:`greedy_select` as a torch loop (any device); the reference the
    other two are tested against."""
    batch, length, _ = sim.shape
    rows = sim.reshape(batch * length, length)
    offsets = torch.arange(batch, device=sim.device) * length
    max_sim = rows.index_select(0, start + offsets)
    picked = [start]
    for _ in range(1, num):
        nxt = max_sim.argmin(dim=1)
        picked.append(nxt)
        torch.maximum(
            max_sim, rows.index_select(0, nxt + offsets), out=max_sim)
    return torch.stack(picked, dim=1)


def greedy_select_numpy(sim: Tensor, start: Tensor, num: int) -> Tensor:
    """:func:`greedy_select` as a numpy loop on CPU tensors (no copy of
    ``sim``: numpy reads torch's buffer)."""
    sims = sim.detach().numpy()
    batch = sims.shape[0]
    samples = np.arange(batch)
    first = start.detach().numpy()
    out = np.empty((batch, num), dtype=np.int64)
    out[:, 0] = first
    running = sims[samples, first]  # fancy indexing copies
    for step in range(1, num):
        nxt = running.argmin(axis=1)  # first minimum, as torch's
        out[:, step] = nxt
        np.maximum(running, sims[samples, nxt], out=running)
    return torch.from_numpy(out)


def select_meta_tokens(x_norm: Tensor,
                       num_meta: int,
                       scores: Tensor,
                       alpha: float = 1.5,
                       meta_filter: bool = True,
                       start: Optional[Tensor] = None) -> Tensor:
    """Adaptive meta-token generation (sec. 3.2.1).

    Picks ``ceil(alpha * L')`` candidates by most-orthogonal selection, then
    keeps the ``L'`` candidates with the highest attentiveness ``scores``
    (the EViT-style filter; equal scores: the earlier pick). By default the
    greedy start is the highest-scoring token, so the result is
    deterministic.

    Args:
        x_norm (Tensor): L2-normalised tokens ``(B, L, D)``.
        num_meta (int): Number of meta tokens ``L'``.
        scores (Tensor): Attentiveness of each token ``(B, L)``, e.g. its
            cosine similarity to the CLS token.
        alpha (float): Over-selection factor. Defaults to 1.5.
        meta_filter (bool): Whether to over-select and filter. If False,
            ``L'`` tokens are selected directly. Defaults to True.
        start (Tensor, optional): First greedy pick per sample ``(B,)``
            (long), e.g. a random token as in the paper. Defaults to the
            most attentive token.

    Returns:
        Tensor: Meta-token indices ``(B, L')``, sorted by source index.
    """
    batch, length = x_norm.shape[:2]
    if num_meta >= length:
        idx = torch.arange(length, device=x_norm.device)
        return idx.expand(batch, length)
    per_video = torch.full((batch, ), int(num_meta), device=x_norm.device)
    return select_meta_tokens_per_video(x_norm, per_video, int(num_meta),
                                        scores, alpha, meta_filter, start)[0]


def select_meta_tokens_per_video(
        x_norm: Tensor,
        num_meta: Tensor,
        slots: int,
        scores: Tensor,
        alpha: float = 1.5,
        meta_filter: bool = True,
        start: Optional[Tensor] = None,
        valid: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """:func:`select_meta_tokens` for a padded batch, each video on its
    real tokens with its own ``L'``, in one pass.

    Args:
        x_norm (Tensor): L2-normalised tokens ``(B, L, D)``.
        num_meta (Tensor): ``(B,)`` each video's ``L'``, at most ``slots``
            and below its token count.
        slots (int): Meta-token slots (the batch's largest ``L'``).
        scores (Tensor): Attentiveness ``(B, L)``.
        alpha (float): Over-selection factor. Defaults to 1.5.
        meta_filter (bool): Over-select and filter. Defaults to True.
        start (Tensor, optional): First greedy pick ``(B,)``. Defaults to
            each video's most attentive real token.
        valid (Tensor, optional): ``(B, L)`` bool, False for padding (at
            the end of each row); never picked. Defaults to all real.

    Returns:
        tuple[Tensor, Tensor]: Meta-token indices ``(B, slots)``, each
        video's sorted by source index in its first ``num_meta[b]`` slots
        (the rest 0), and those slots' mask ``(B, slots)``.
    """
    batch, length = x_norm.shape[:2]
    if valid is None:
        valid = torch.ones(
            batch, length, dtype=torch.bool, device=x_norm.device)
    lengths = valid.sum(dim=1)
    scores = scores.float().masked_fill(~valid, float('-inf'))
    if start is None:
        start = scores.argmax(dim=1)
    if meta_filter:
        # min(L, ceil(alpha * L')) per video, in float64 as
        # num_candidates computes it.
        wanted = (alpha * num_meta.double() - 1e-9).ceil().long()
        per_video = torch.minimum(lengths, wanted)
        width = num_candidates(length, slots, alpha)
    else:
        per_video, width = num_meta, int(slots)
    # |cos| between all pairs; padding's column is infinite, so no
    # video's greedy step ever picks it.
    sim = fp32_bmm(x_norm, x_norm.transpose(1, 2)).abs_()
    sim.diagonal(dim1=1, dim2=2).fill_(float('inf'))
    sim.masked_fill_(~valid[:, None, :], float('inf'))
    picked = greedy_select(sim, start.to(torch.long), width)
    if meta_filter:
        cand_scores = scores.gather(1, picked)
        best = descending(cand_scores, active(per_video, width))
        picked = picked.gather(1, best[:, :slots])
    used = active(num_meta, slots)
    # Sort each video's picks by source index, unused slots last.
    order = torch.where(used, picked[:, :slots], length + picked[:, :slots])
    picked = order.sort(dim=1).values
    return torch.where(used, picked, torch.zeros_like(picked)), used


def correspondence(
        feats: Tensor,
        meta_idx: Tensor,
        sizes: Optional[Tensor] = None,
        tau: float = 0.1,
        meta_valid: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Correspondence scores between tokens and meta tokens (eq. 4).

    ``S = phi(X) phi(M)^T / tau`` with ``phi(M)`` gathered from ``phi(X)``.
    A softmax over the meta axis gives each input token's soft assignment;
    normalising each meta token's column (weighted by the input sizes) then
    turns every output into a convex combination of inputs. The column masses
    are the new token sizes and add up to the total input size.

    Args:
        feats (Tensor): L2-normalised encoded tokens ``phi(X)``, ``(B, L, d)``.
        meta_idx (Tensor): Meta-token indices ``(B, k)``.
        sizes (Tensor, optional): Input token sizes ``(B, L)``; all ones if
            None.
        tau (float): Softmax temperature. Defaults to 0.1.
        meta_valid (Tensor, optional): ``(B, k)`` bool, False for padded
            meta slots, which no token is assigned to (their columns and
            sizes come out zero).

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``weights`` ``(B, L, k)`` whose
        columns sum to one (``A = weights^T X``), ``assign`` ``(B, L, k)``
        whose rows sum to one, and the new sizes ``(B, k)``.
    """
    meta = batched_rows(feats, meta_idx)
    # float32 logits with autocast off: |cos| / tau (tau = 0.1) magnifies
    # the rounding of a half-precision product tenfold before the softmax.
    logits = fp32_bmm(feats, meta.transpose(1, 2)) / tau
    if meta_valid is not None:
        logits = logits.masked_fill(~meta_valid[:, None, :], float('-inf'))
    assign = logits.softmax(dim=-1)
    mass = assign if sizes is None else assign * sizes.unsqueeze(-1)
    new_sizes = mass.sum(dim=1)
    tiny = torch.finfo(new_sizes.dtype).tiny
    weights = mass / new_sizes.clamp_min(tiny).unsqueeze(1)
    return weights, assign, new_sizes


def batched_rows(x: Tensor, index: Tensor) -> Tensor:
    """Rows ``index`` ``(B, k)`` of every sample of ``x`` ``(B, L, D)``, as
    ``(B, k, D)``: ``x.gather(1, index[..., None].expand(-1, -1, D))`` as
    one row copy (``index_select`` on the flattened batch), several times
    faster on CPU than the element-wise gather."""
    batch, length = x.shape[:2]
    offsets = torch.arange(batch, device=x.device).unsqueeze(1) * length
    rows = x.reshape(batch * length,
                     *x.shape[2:]).index_select(0,
                                                (index + offsets).reshape(-1))
    return rows.reshape(batch, index.shape[1], *x.shape[2:])


def fp32_bmm(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` in float32 whatever the autocast state (a similarity whose
    ranking or softmax must not depend on the training precision)."""
    with torch.autocast(a.device.type, enabled=False):
        return torch.bmm(a.float(), b.float())


def normalize(x: Tensor) -> Tensor:
    """L2-normalise the last dimension."""
    return F.normalize(x, dim=-1)
