"""GFLOPs and parameters of a recognizer with MMEngine's counter.

MMEngine's ``FlopAnalyzer`` (fvcore convention: one multiply-add is one FLOP)
has no handle for ``aten::scaled_dot_product_attention`` and would count the
fused attention as zero. :func:`sdpa_flop_jit` counts it like the two matrix
products it replaces (``Q K^T`` and ``A V``), so fused and explicit attention
give the same figure.
"""
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import get_shape
from mmengine.analysis.print_helper import complexity_stats_table
from torch import nn


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of ``scaled_dot_product_attention(q, k, v, ...)``.

    Args:
        inputs (list): Traced inputs; the first three are ``q``, ``k``, ``v``
            of shapes ``(..., Lq, d)``, ``(..., Lk, d)``, ``(..., Lk, dv)``.
        outputs (list): Traced outputs (unused).

    Returns:
        int: ``batch * Lq * Lk * (d + dv)``.
    """
    q, k, v = (get_shape(i) for i in inputs[:3])
    batch = 1
    for size in q[:-2]:
        batch *= size
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


class _HeadForward(nn.Module):
    """Runs a recognizer from clips to class scores, one view per clip."""

    def __init__(self, recognizer: nn.Module) -> None:
        super().__init__()
        self.recognizer = recognizer

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        # Recognizer3D expects (N, views, C, T, H, W).
        return self.recognizer._forward(clips.unsqueeze(1), stage='head')


def complexity(model: nn.Module,
               shape: Sequence[int] = (1, 3, 8, 224, 224),
               table_depth: Optional[int] = None,
               clips: Optional[torch.Tensor] = None) -> Dict[str, Any]:
    """Count FLOPs and parameters of a recognizer or backbone.

    Args:
        model (nn.Module): An MMAction2 recognizer (anything with
            ``_forward(inputs, stage='head')``) or a bare backbone.
        shape (Sequence[int]): Input ``(N, C, T, H, W)``; the FLOPs are for
            these ``N`` clips (one view each).
        table_depth (int, optional): Also make MMEngine's per-module table
            of parameters and FLOPs, this many module levels deep.
        clips (Tensor, optional): The input itself, normalised, instead of
            random clips of ``shape`` (which it then replaces): what a
            content-adaptive reducer (RLT) keeps, and so the count, depends
            on the video.

    Returns:
        dict: ``flops`` (total), ``params``, ``by_module`` (FLOPs per
        top-level module name) and, with ``table_depth``, ``table``.
    """
    if clips is not None:
        shape = tuple(clips.shape)
    if len(shape) != 5:
        raise ValueError(f'shape must be (N, C, T, H, W), got {tuple(shape)}')
    target = _HeadForward(model) if hasattr(model, '_forward') else model
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    if clips is None:
        clips = torch.randn(*shape, device=device)
    clips = clips.to(device)
    analyzer = FlopAnalyzer(target, (clips, ))
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        flops = analyzer.total()
        by_module = analyzer.by_module()
        table = (
            complexity_stats_table(
                analyzer, max_depth=table_depth, show_param_shapes=False)
            if table_depth is not None else None)
    model.train(was_training)
    result = dict(
        flops=flops, params=parameter_count(model)[''], by_module=by_module)
    if table is not None:
        result['table'] = table
    return result


def complexity_of_views(model: nn.Module,
                        batches: Sequence[Any]) -> Dict[str, Any]:
    """FLOPs of one view of each video, for content-adaptive reducers
    (RLT), whose token count and so FLOPs depend on the video.

    A view's FLOPs follow from its token count at each stage, so each
    distinct sequence of counts is traced once (tracing is the slow part).

    Args:
        model (nn.Module): A built recognizer (in eval mode for the count).
        batches (Sequence): Collated samples, one video each
            (:func:`~mmaction_sttm.analysis.view.video_views`).

    Returns:
        dict: ``gflops`` per video, ``tokens`` kept by the reducer per video
        (None without one) and ``shape`` of a view ``(1, C, T, H, W)``.
    """
    model.eval()
    gflops, tokens, shape = [], [], None
    by_counts: Dict[tuple, float] = {}
    reduces = getattr(model.backbone, 'reducer', None) is not None
    for batch in batches:
        with torch.no_grad():
            data = model.data_preprocessor(batch, False)
            clip = data['inputs'][:, 0]  # (1, C, T, H, W): the first view
            _, stages = model.backbone.forward_tokens(clip)
        shape = tuple(clip.shape)
        key = (shape, ) + tuple(int(t.x.shape[1]) for t in stages)
        if key not in by_counts:
            by_counts[key] = complexity(model, clips=clip)['flops'] / 1e9
        gflops.append(by_counts[key])
        if reduces:
            tokens.append(int(stages[0].counts[0]))
    return dict(gflops=gflops, tokens=tokens or None, shape=shape)
