"""Reading one video file the way a model's config reads its data."""
import os.path as osp
from typing import Tuple

import numpy as np
from torch import Tensor


def _pipeline_cfg(cfg, pipeline: str) -> list:
    """The config's ``val`` or ``test`` pipeline (top-level variable, else
    the dataloader's)."""
    if pipeline not in ('val', 'test'):
        raise ValueError(f"pipeline must be 'val' or 'test', got "
                         f'{pipeline!r}')
    transforms = cfg.get(f'{pipeline}_pipeline')
    if transforms is None:
        loader = cfg.get(f'{pipeline}_dataloader') or {}
        transforms = loader.get('dataset', {}).get('pipeline')
    if not transforms:
        raise ValueError(f'the config has no {pipeline}_pipeline')
    return [dict(t) for t in transforms]


def _reads_file(transform: dict) -> bool:
    """Whether a transform opens or decodes the video (DecordInit,
    DecordDecode, OpenCVInit, PyAVDecode, DecodeWithFallback, ...): its
    failures mean the file is unreadable, not that the config is wrong."""
    name = str(transform.get('type', ''))
    return name.endswith(('Init', 'Decode', 'DecodeWithFallback'))


def load_clip(cfg,
              video_path: str,
              pipeline: str = 'val',
              view: int = 0) -> Tuple[Tensor, np.ndarray]:
    """Read one video file the way the model's config reads its data.

    Runs the config's ``val`` (one centre crop) or ``test`` (multi-view)
    pipeline through MMAction2's transforms, so the file may have any
    resolution and length (``SampleFrames`` loops short videos and spreads
    its clips over long ones), then the model's data preprocessor.

    Args:
        cfg (Config | str): The model's config (or its file).
        video_path (str): The video file.
        pipeline (str): ``'val'`` or ``'test'``. Defaults to ``'val'``.
        view (int): Which view of a multi-view pipeline (clip x crop, in
            ``FormatShape``'s order). Defaults to 0.

    Returns:
        tuple[Tensor, np.ndarray]: The network input ``(1, C, T, H, W)``
        (normalised, on the CPU) and the frames it was made of, uint8 RGB
        ``(T, H, W, 3)``.

    Raises:
        FileNotFoundError: ``video_path`` does not exist.
        ValueError: The file cannot be read as a video, or the config does
            not give clips ``(C, T, H, W)``.
    """
    import mmaction.datasets  # noqa: F401  (registers the transforms)
    from mmaction.registry import MODELS, TRANSFORMS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    if not osp.isfile(video_path):
        raise FileNotFoundError(f'video file not found: {video_path}')
    if osp.getsize(video_path) == 0:
        raise ValueError(f'cannot read video {video_path!r}: the file is '
                         f'empty')
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    results = dict(
        filename=video_path, label=-1, start_index=0, modality='RGB')
    for transform in _pipeline_cfg(cfg, pipeline):
        step = TRANSFORMS.build(transform)
        if not _reads_file(transform):
            results = step(results)
            continue
        try:
            results = step(results)
        except Exception as err:  # noqa: BLE001  (any reader's error type)
            # The reader's own traceback says nothing the user can act on.
            reason = str(err).strip().splitlines()
            reason = reason[0] if reason else type(err).__name__
            raise ValueError(f'cannot read video {video_path!r} '
                             f'({transform["type"]}): {reason}') from None
        if results is None:
            raise ValueError(f'cannot read video {video_path!r}')
    inputs = results['inputs']
    if inputs.dim() != 5:
        raise ValueError(f'the pipeline gives inputs of shape '
                         f'{tuple(inputs.shape)}; clips (views, C, T, H, W) '
                         f"need FormatShape(input_format='NCTHW')")
    if not 0 <= view < inputs.shape[0]:
        raise ValueError(f'view {view} out of range: the pipeline gives '
                         f'{inputs.shape[0]} views')
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    data = preprocessor(
        dict(inputs=[inputs], data_samples=[results['data_samples']]),
        training=False)
    clip = data['inputs'][:, view].float()
    frames = inputs[view].permute(1, 2, 3, 0).cpu().numpy()
    if getattr(preprocessor, 'to_rgb', False):
        frames = frames[..., ::-1]  # the preprocessor swaps BGR to RGB
    frames = np.ascontiguousarray(np.clip(frames, 0, 255).astype(np.uint8))
    return clip, frames
