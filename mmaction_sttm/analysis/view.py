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
        crops per video), each None where the pipeline does not say. The
        sampler of a ``DecodeWithFallback`` step counts as a step.
    """
    from mmaction_sttm.datasets.transforms import pipeline_steps
    steps = find_test_pipeline(cfg) or []
    clip_len = crop = None
    clips, crops = 1, 1
    for step in pipeline_steps(steps):
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


def video_views(cfg: Any, ann_file: str, prefix: Optional[str],
                num: int) -> List[Any]:
    """The first ``num`` videos of an annotation list through the config's
    test pipeline, each collated as a batch of one (for the model's data
    preprocessor), so that tools measure what a content-adaptive reducer
    does on real videos rather than on random clips.

    Args:
        cfg (Config): A recognizer config with a ``test_dataloader``.
        ann_file (str): MMAction2 video list (``path label`` per line).
        prefix (str, optional): Folder of its videos; None keeps the test
            dataset's ``data_prefix``.
        num (int): How many videos, from the top of the list.

    Returns:
        list: One collated batch per video, with its ``filename``.

    Raises:
        ToolError: The list is missing or empty.
    """
    import copy

    from mmaction.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    from mmaction_sttm import tooling
    tooling.require_file(ann_file, '--videos')
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset_cfg.ann_file = ann_file
    if prefix is not None:
        dataset_cfg.data_prefix = dict(video=prefix)
    with tooling.config_errors():
        dataset = DATASETS.build(dataset_cfg)
    if len(dataset) == 0:
        raise tooling.ToolError(f'--videos {ann_file}: no videos listed')
    batches = []
    for i in range(min(num, len(dataset))):
        batch = pseudo_collate([dataset[i]])
        batch['filename'] = dataset.get_data_info(i)['filename']
        batches.append(batch)
    return batches
