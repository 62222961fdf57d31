"""RLT on real footage: three MMAction2 clips (``tests/data/mmaction2``,
Apache-2.0) through the zoo's Kinetics-400 test pipeline (1 clip x 3 crops,
8 x 224 x 224), the tokens RLT keeps of them, and a batch of them against
one video at a time through ViT-S + RLT + STTM, padded and packed."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CLIPS = osp.join(ROOT, 'tests', 'data', 'mmaction2')
RLT_STTM = osp.join(
    ROOT, 'configs', 'rlt',
    'rlt-sttm_vit-small-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py')
#: Tokens RLT (threshold 0.1) keeps of each clip's first crop, out of
#: 1568 (8 frames, 2-frame tubelets, 14 x 14 patches), as measured by
#: ``python tools/analysis_tools/get_flops.py
#: configs/rlt/rlt_vit-small-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py
#: --videos tests/data/mmaction2/list.txt --video-prefix
#: tests/data/mmaction2 --per-video``; a decoder or resize that changes
#: a few pixels may move a count a little, so 5% either way.
KEPT = {'demo.mp4': 1395, 'test.mp4': 1326, 'test.avi': 767}


@pytest.fixture(scope='module')
def views():
    """Each clip through the config's test pipeline and the recognizer's
    data preprocessor: ``name -> (3 crops, C, T, H, W)``."""
    from mmaction_sttm.analysis.view import video_views
    init_default_scope('mmaction')
    cfg = Config.fromfile(RLT_STTM)
    batches = video_views(cfg, osp.join(CLIPS, 'list.txt'), CLIPS, num=10)
    model = _model('padded')
    out = {}
    for batch in batches:
        inputs = model.data_preprocessor(batch, False)['inputs']
        out[osp.basename(batch['filename'])] = inputs[0]
    return out


def _model(mode: str, reducer_only: bool = False):
    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.registry import MODELS
    from mmaction_sttm.tooling import disable_pretrained
    init_default_scope('mmaction')
    cfg = Config.fromfile(RLT_STTM)
    disable_pretrained(cfg.model)
    cfg.model.backbone.batching = mode
    if reducer_only:
        cfg.model.backbone.merger = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def test_the_k400_pipeline_reads_every_clip(views):
    assert sorted(views) == sorted(KEPT)
    for name, x in views.items():
        assert tuple(x.shape) == (3, 3, 8, 224, 224), name
        assert x.float().std() > 1, f'{name}: a blank clip'


def test_what_rlt_keeps_of_real_footage(views):
    """Per clip, RLT's kept tokens (first crop) are near the measured
    counts: most of the two moving clips, about half of test.avi."""
    model = _model('padded', reducer_only=True)
    for name, x in views.items():
        with torch.no_grad():
            _, stages = model.backbone.forward_tokens(x[:1])
        kept = int(stages[0].counts[0])
        assert abs(kept - KEPT[name]) <= 0.05 * KEPT[name], (name, kept)


@pytest.mark.parametrize('mode', ['padded', 'packed'])
def test_a_batch_of_real_clips_equals_one_at_a_time(views, mode):
    """Three clips of different token counts in one batch give each the
    features it gets alone, through ViT-S + RLT + STTM."""
    model = _model(mode)
    batch = torch.stack([views[name][0] for name in sorted(views)])
    with torch.no_grad():
        together = model.backbone(batch)
        alone = torch.cat(
            [model.backbone(batch[i:i + 1]) for i in range(len(batch))])
    assert together.shape == alone.shape
    torch.testing.assert_close(together, alone, atol=3e-5, rtol=1e-4)


@pytest.mark.parametrize('step, removed',
                         [(1, (0.70, 0.95)), (2, (0.70, 0.95)),
                          (8, (0.0, 0.05))])
def test_a_slow_pan_over_smooth_content_counts_as_static(step, removed):
    """A camera that pans is not a moving camera to RLT when it pans slowly
    over smooth content: noise blurred with sigma 9 px, panned ``step``
    pixels between the model's frames (8 frames 8 apart: step / 8 pixels
    per source frame), through the same ViT-S + RLT; what docs/mergers.md
    reports. Sharp content panned 1 px keeps every token."""
    import cv2
    import numpy as np
    model = _model('padded', reducer_only=True)

    def removed_share(image):
        frames = [
            image[50:274, 50 + step * t:274 + step * t] for t in range(8)
        ]
        clip = torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2)
        inputs = model.data_preprocessor(
            dict(inputs=[clip[None].float()], data_samples=None),
            False)['inputs']
        with torch.no_grad():
            _, stages = model.backbone.forward_tokens(inputs[:, 0])
        return 1 - int(stages[0].counts[0]) / 1568

    sharp = np.random.default_rng(0).integers(0, 255, (400, 800, 3), np.uint8)
    smooth = cv2.normalize(
        cv2.GaussianBlur(sharp, (0, 0), 9), None, 0, 255, cv2.NORM_MINMAX)
    low, high = removed
    share = removed_share(smooth)
    assert low <= share <= high
    if step == 1:
        assert removed_share(sharp) == 0
