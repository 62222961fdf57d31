"""What one view of a config's test pipeline is: the clip a model sees."""
from typing import Any, Dict, List, Optional

# MMAction2's frame samplers; each has `clip_len`.
SAMPLERS = ('SampleFrames', 'UniformSample', 'UniformSampleFrames',
            'DenseSampleFrames', 'SampleAVAFrames')
# Steps whose output is several views of one clip, and how many.
MULTI_CROPS = {'ThreeCrop': 3, 'TenCrop': 10}


def find_test_pipeline(cfg: Any) -> Optional[List[dict]]:
    """The pipeline of the test (else val) dataset, through dataset
    wrappers such as ``RepeatDataset``, else ``cfg.test_pipeline``.

    Args:
        cfg (Config): The config.

    Returns:
        list[dict] | None: The pipeline's steps.
    """
    for loader in ('test_dataloader', 'val_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        while isinstance(dataset.get('dataset'), dict):
            dataset = dataset['dataset']
        if dataset.get('pipeline'):
            return list(dataset['pipeline'])
    return cfg.get('test_pipeline')


def pipeline_view(cfg: Any) -> Dict[str, Any]:
    """One view of the config's test pipeline.

    Args:
        cfg (Config): The config.

    Returns:
        dict: ``clip_len``, ``crop`` (``(H, W)``) and ``views`` (clips x
        crops per video), each None where the pipeline does not say.
    """
    steps = find_test_pipeline(cfg) or []
    clip_len = crop = None
    clips, crops = 1, 1
    for step in steps:
        kind = str(step.get('type', '')).split('.')[-1]
        if kind in SAMPLERS and 'clip_len' in step:
            clip_len = int(step['clip_len'])
            clips = int(step.get('num_clips', 1))
        size = step.get('crop_size')
        if kind == 'Resize' and not step.get('keep_ratio', True):
            size = step.get('scale')
        if size is not None:
            # MMAction2 sizes are (w, h).
            w, h = (size, size) if isinstance(size, int) else size
            if min(w, h) > 0:
                crop = (int(h), int(w))
        if kind in MULTI_CROPS:
            crops = MULTI_CROPS[kind]
    return dict(clip_len=clip_len, crop=crop, views=clips * crops)
