"""A study's variants: one config each, described by its ``study`` dict.

A study is a config folder (``configs/synthetic/study``,
``configs/synthetic/confirm``) with one sub-folder per regime:

- ``pretrain/``: the frame-level pre-training (one config);
- ``finetune/``: (b) a merger inserted into the pre-trained backbone, then
  fine-tuned, the paper's regime;
- ``ots/``: (c) off the shelf, a merger inserted into a fine-tuned variant
  (``study.source``) and tested with no training;
- ``scratch/``: (d) trained from scratch.

Each config's ``study = dict(name=..., note=..., curve=..., source=...)``
says what it is: ``curve`` groups the variants of one merger at several
GFLOPs (``'baseline'`` marks the unmerged model).
"""
import glob
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .records import RunRecord

REGIMES = ('finetune', 'ots', 'scratch')
TITLES = {
    'finetune': '(b) Pre-trained backbone, merger inserted, fine-tuned',
    'ots': '(c) Off the shelf: merger inserted into the fine-tuned '
    'baseline, no training',
    'scratch': '(d) From scratch',
}


@dataclass
class Variant:
    """One config of a study.

    Args:
        regime (str): Its folder: one of :data:`REGIMES` or ``'pretrain'``.
        name (str): ``study.name``.
        config (str): Path of the config, relative to the repository.
        note (str): ``study.note``, what it is in words.
        curve (str): ``study.curve``, the merger it is a point of.
        source (str, optional): For ``ots``: the fine-tuned variant it is
            inserted into.
        gflops (float): GFLOPs per view, once counted.
        params_m (float): Parameters in millions, once counted.
        results (dict): Per seed, the run's record.
    """
    regime: str
    name: str
    config: str
    note: str
    curve: str
    source: Optional[str] = None
    gflops: float = 0.0
    params_m: float = 0.0
    results: Dict[int, RunRecord] = field(default_factory=dict)


def load_variants(root: str,
                  config_dir: str,
                  regimes: Sequence[str],
                  names: Optional[Sequence[str]] = None) -> List[Variant]:
    """The study configs of ``regimes`` (all, or those in ``names``).

    Args:
        root (str): The repository root; config paths are kept relative
            to it.
        config_dir (str): The study's config folder, relative to ``root``.
        regimes (Sequence[str]): Sub-folders to read.
        names (Sequence[str], optional): Only these (``name`` or
            ``regime/name``); an unknown one is an error.

    Returns:
        list[Variant]: The variants, in folder and file-name order.
    """
    from mmengine.config import Config
    variants = []
    for regime in regimes:
        paths = sorted(glob.glob(osp.join(root, config_dir, regime, '*.py')))
        for path in paths:
            study = Config.fromfile(path).get('study')
            if study is None:
                raise ValueError(f'{path}: a study config needs a `study` '
                                 'dict (name, note, curve)')
            name = study['name']
            if names and name not in names and \
                    f'{regime}/{name}' not in names:
                continue
            variants.append(
                Variant(regime, name, osp.relpath(path, root),
                        study.get('note', ''), study.get('curve', name),
                        study.get('source')))
    if names:
        known = {v.name for v in variants} | \
            {f'{v.regime}/{v.name}' for v in variants}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f'--variants: unknown {unknown}')
    return variants


def variant_has_reducer(root: str, variant: Variant) -> bool:
    """Whether the variant's backbone has a content-adaptive reducer
    (RLT), whose GFLOPs depend on the video."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(root, variant.config))
    return cfg.model.backbone.get('reducer') is not None


def count_complexity(root: str,
                     variant: Variant,
                     videos: Optional[Dict[str, str]] = None) -> None:
    """Set ``variant.gflops`` (per view, at the config's own clip shape)
    and ``variant.params_m``.

    Args:
        root (str): The repository root.
        variant (Variant): The variant to count.
        videos (dict, optional): ``ann_file`` and ``video`` (folder) of the
            videos over which a content-adaptive reducer's GFLOPs are
            averaged (one view each); its GFLOPs depend on the video.
            Required for a variant with ``model.backbone.reducer``; the
            others are counted on one random clip.

    Raises:
        ValueError: A reducer variant without ``videos``.
    """
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    if not MMLogger.check_instance_created('mmengine'):
        MMLogger.get_instance('mmengine', log_level='WARNING')
    import mmaction_sttm  # noqa: F401  (registers the backbones)
    from mmaction_sttm.analysis import complexity, complexity_of_views
    from mmaction_sttm.analysis.view import pipeline_view, video_views
    from mmaction_sttm.registry import MODELS
    cfg = Config.fromfile(osp.join(root, variant.config))
    cfg.model.backbone.pop('init_cfg', None)
    view = pipeline_view(cfg)
    model = MODELS.build(cfg.model)
    shape = (1, 3, view['clip_len']) + tuple(view['crop'])
    result = complexity(model, shape)
    variant.params_m = result['params'] / 1e6
    if cfg.model.backbone.get('reducer') is None:
        variant.gflops = result['flops'] / 1e9
        return
    if videos is None:
        raise ValueError(f'{variant.config}: a reducer\'s GFLOPs depend on '
                         'the video; count them over a split (videos=...)')
    views = video_views(cfg, videos['ann_file'], videos['video'], num=10**9)
    flops = complexity_of_views(model, views)['gflops']
    variant.gflops = sum(flops) / len(flops)
