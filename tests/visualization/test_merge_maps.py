"""Merge maps, attention rollout, clip loading and the visualisation tool.

The models are tiny and randomly initialised; the videos are written by the
tests (the synthetic dataset, plus "real-world" files of another size and
length, and broken ones).
"""
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmaction.utils import register_all_modules
from mmengine.config import Config
from PIL import Image
from tiny_backbones import BACKBONES, DIMS, FRAMES, SIZE
from tool_modules import load_tool
from torch import nn

import mmaction_sttm  # noqa: F401
from mmaction_sttm import tooling
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.generators import SyntheticSpec, make_synthetic_dataset
from mmaction_sttm.registry import MODELS
from mmaction_sttm.visualization import (attention_rollout,
                                         draw_attention_sheet,
                                         draw_merge_sheet, load_clip,
                                         save_animation, token_colours,
                                         trace_merging)
from mmaction_sttm.visualization.drawing import _merge_overlay

register_all_modules()

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'visualize_merging.py')
BASE_CONFIG = osp.join(
    ROOT, 'configs', 'synthetic',
    'vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py')

# Families whose blocks take the proportional-attention bias.
from mmaction_sttm.models.backbones.timm_vit import \
    MergingTimmViT  # noqa: E402

# Backbones whose blocks take proportional attention (timm's from 1.0.16).
PROP_ATTN = ('vit', 'timesformer', 'videomae') + (
    ('timm', ) if MergingTimmViT.supports_attn_bias else ())


def _merger_types():
    """STTM and every merger registered under ``models/mergers`` now."""
    try:
        import mmaction_sttm.models.mergers  # noqa: F401
    except ImportError:
        pass
    others = sorted(
        name for name, cls in MODELS.module_dict.items()
        if cls.__module__.startswith('mmaction_sttm.models.mergers.'))
    return ['STTM'] + others


MERGERS = _merger_types()


def _drops_sizes(merger):
    """Whether a merger's sizes sum its weights, not its sizes (vid-TLDR
    drops the background it merges away)."""
    return getattr(MODELS.get(merger), 'weighted_sizes', False)


HARD = [m for m in MERGERS if m != 'STTM']
# The paper's three backbones with every merger; the image ViT wrappers,
# which share SpaceTimeViT's code path here, with STTM.
MAIN = ('vit', 'timesformer', 'videomae')
CASES = [(b, m) for b in MAIN for m in MERGERS]
CASES += [('mmpretrain', 'STTM'), ('timm', 'STTM')]


def _build(backbone, merger, prop_attn=False):
    cfg = dict(BACKBONES[backbone])
    if merger is not None:
        cfg['merger'] = dict(type=merger, layers=(1, 2), ratio=0.5)
    if prop_attn:
        cfg['prop_attn'] = True
    torch.manual_seed(0)
    # PyTorch's default initialisation: sharper attention and more varied
    # merges than the 0.02-std init, and no MMEngine init log to write.
    return MODELS.build(cfg).eval()


def _clip(seed=1):
    return torch.randn(
        1,
        3,
        FRAMES,
        SIZE,
        SIZE,
        generator=torch.Generator().manual_seed(seed))


def test_merger_types_found():
    # The parametrisations below would silently shrink otherwise.
    assert MERGERS[0] == 'STTM' and len(MERGERS) >= 2


@pytest.mark.parametrize('backbone,merger', CASES)
def test_trace_partitions_patches_and_agrees_with_sizes(backbone, merger):
    model = _build(backbone, merger)
    trace = trace_merging(model, _clip())
    tubelet = 2 if backbone == 'videomae' else 1
    assert trace.grid == (FRAMES // tubelet, SIZE // 8, SIZE // 8)
    assert trace.tubelet == tubelet and trace.patch_size == (8, 8)
    assert trace.has_cls == (backbone != 'videomae')
    num_patches = int(np.prod(trace.grid))
    schedule = model.merge_schedule
    assert schedule.track_sources is False  # restored after tracing
    assert [s.num_tokens for s in trace.merges] == list(schedule.counts)
    for index, stage in enumerate(trace.stages):
        # One token per patch: the hard map partitions the patches.
        assert stage.assignment.shape == trace.grid
        assert int(stage.assignment.min()) >= 0
        assert int(stage.assignment.max()) < stage.num_tokens
        assert int(stage.counts.sum()) == num_patches
        # The soft map it comes from: rows sum to one, columns to the sizes
        # the model computed.
        torch.testing.assert_close(
            stage.sources.sum(1), torch.ones(num_patches))
        if _drops_sizes(merger):
            # vid-TLDR: a token's size counts only the salient part of the
            # patches it stands for.
            assert (stage.sizes <= stage.sources.sum(0) + 1e-4).all()
        else:
            torch.testing.assert_close(
                stage.sources.sum(0), stage.sizes, atol=1e-4, rtol=1e-5)
        if stage.stage == 'spatial':
            # A spatial merge never mixes frames: the tokens of frame group
            # t are t * per_frame ... (t + 1) * per_frame - 1.
            per_frame = stage.num_tokens // trace.grid[0]
            groups = stage.assignment // per_frame
            expected = torch.arange(trace.grid[0])[:, None, None]
            assert torch.equal(groups, expected.expand_as(groups))
        if merger != 'STTM' or index == 0:
            # One-hot sources: the patch counts are the sizes and every
            # token has a colour.
            assert float(stage.sources.max(1).values.min()) == 1.0
            if not _drops_sizes(merger):
                assert torch.equal(stage.counts.float(), stage.sizes)
            assert stage.num_owning == stage.num_tokens
        elif index == 1:
            # STTM's first merge: a meta token is an input token, and its
            # own patch's logit (cosine 1 / tau) beats every other meta
            # token, so every output owns at least that patch.
            assert stage.num_owning == stage.num_tokens
        else:
            # Later soft merges: a token may own no patch outright.
            assert 0 < stage.num_owning <= stage.num_tokens
    if tubelet == 2:
        for index in range(len(trace.stages)):
            assert torch.equal(
                trace.frame_map(index, 0), trace.frame_map(index, 1))


# With a merger, only the families whose blocks take the attention bias,
# and not vid-TLDR: uniform attention makes every token background to it,
# so merged patches are dropped, which is no error of the rollout.
UNIFORM_CASES = [(b, m) for b, m in CASES
                 if b in PROP_ATTN and not _drops_sizes(m)]
UNIFORM_CASES += [(b, None) for b in BACKBONES]


@pytest.mark.parametrize('backbone,merger', UNIFORM_CASES)
def test_rollout_of_uniform_attention_is_uniform(backbone, merger):
    """With zero queries and keys every block attends uniformly, and with
    proportional attention a merged token counts as many tokens as it
    stands for: then every input patch is exactly as relevant as every
    other, through any merge, if (and only if) the merges are carried back
    to the patches with the right weights."""
    model = _build(backbone, merger, prop_attn=merger is not None)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if any(k in name for k in ('qkv', 'in_proj', 'q_bias')):
                param.zero_()
    heat = attention_rollout(model, _clip())
    assert heat.shape == (FRAMES, SIZE // 8, SIZE // 8)
    torch.testing.assert_close(heat, torch.ones_like(heat), atol=1e-5, rtol=0)


@pytest.mark.parametrize('backbone', list(BACKBONES))
def test_rollout_shape_range_and_cleanup(backbone):
    model = _build(backbone, 'STTM')

    def hooks():
        # The image-ViT wrappers keep their own QKTap hooks on the qkv
        # layers of the blocks that merges follow.
        return [(list(m._forward_hooks.values()),
                 list(m._forward_pre_hooks.values())) for m in model.modules()]

    before = hooks()
    heat = attention_rollout(model, _clip())
    assert heat.shape == (FRAMES, SIZE // 8, SIZE // 8)
    assert float(heat.max()) == pytest.approx(1.0)
    assert float(heat.min()) >= 0 and float(heat.min()) < 0.95
    # The model is left as it was.
    assert not model.training
    assert hooks() == before


def _merged_state(length):
    # A stage after a merge: the joint attention of every family.
    return Tokens(
        torch.zeros(1, length, DIMS), torch.zeros(1, length, DIMS),
        torch.ones(1, length), None, False)


def test_block_attention_matches_the_modules_own():
    """The attention a backbone reports for rollout is the one its own
    modules compute (where they can return their weights)."""
    torch.manual_seed(0)
    seq = torch.randn(2, 1 + 16, DIMS)
    # TimeSformer after a merge: the spatial MHA over the whole sequence.
    model = _build('timesformer', 'STTM')
    spatial = model.transformer_layers.layers[2].attentions[1]
    h = spatial.norm(seq).transpose(0, 1)
    expected = spatial.attn(h, h, h, need_weights=True)[1]
    torch.testing.assert_close(
        model.block_attention(2, seq, _merged_state(16), None), expected)
    # MMAction2's VideoMAE attention (separate q / v biases) computes its
    # weights explicitly and passes them through attn_drop.
    model = _build('videomae', None)
    block = model.blocks[0]
    nn.init.normal_(block.attn.q_bias)
    nn.init.normal_(block.attn.v_bias)
    seen = []
    block.attn.attn_drop.register_forward_hook(
        lambda mod, args, out: seen.append(out))
    x = torch.randn(2, 16, DIMS)
    block.attn(block.norm1(x))
    torch.testing.assert_close(
        model.block_attention(0, x, _merged_state(16), None), seen[0].mean(1))
    # timm's attention with its fused kernel off does the same.
    model = _build('timm', None)
    attn = model.vit.blocks[0].attn
    attn.fused_attn = False
    seen.clear()
    attn.attn_drop.register_forward_hook(
        lambda mod, args, out: seen.append(out))
    model.vit.blocks[0](seq)
    torch.testing.assert_close(
        model.block_attention(0, seq, _merged_state(16), None),
        seen[0].mean(1))


# --------------------------------------------------------------------------
# Videos, the pipeline and the tool
# --------------------------------------------------------------------------


def _write_video(path, frames, fps=10):
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (width, height))
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()


def _moving_disc(num_frames, height, width):
    frames = np.full((num_frames, height, width, 3), 70, np.uint8)
    for t in range(num_frames):
        cv2.circle(frames[t], (5 + 2 * t % width, height // 2), 12,
                   (240, 180, 20), -1)
    return frames


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    """A synthetic-dataset video, a "real-world" one of another size and
    length, a very short one, an empty and a garbage file."""
    root = tmp_path_factory.mktemp('videos')
    make_synthetic_dataset(
        str(root / 'synthetic'),
        SyntheticSpec(num_classes=2, train_per_class=1, val_per_class=1),
        splits=('val', ))
    paths = dict(
        synthetic=str(root / 'synthetic' / 'videos' / 'val_00000.mp4'))
    paths['wide'] = str(root / 'wide.mp4')
    _write_video(paths['wide'], _moving_disc(50, 100, 140))
    paths['short'] = str(root / 'short.mp4')
    _write_video(paths['short'], _moving_disc(5, 72, 96))
    paths['empty'] = str(root / 'empty.mp4')
    open(paths['empty'], 'wb').close()
    paths['garbage'] = str(root / 'garbage.mp4')
    with open(paths['garbage'], 'wb') as f:
        f.write(np.random.default_rng(0).bytes(4096))
    return paths


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """Configs and checkpoints: SpaceTimeViT + STTM on the synthetic
    pipeline, and the MMAction2 ViT baseline config as it is."""
    root = tmp_path_factory.mktemp('models')
    sttm_cfg = root / 'sttm.py'
    sttm_cfg.write_text(
        f'_base_ = [{BASE_CONFIG!r}]\n'
        'model = dict(\n'
        '    backbone=dict(_delete_=True, type="SpaceTimeViT", img_size=56,\n'
        '                  patch_size=8, num_frames=8, embed_dims=32,\n'
        '                  depth=3, num_heads=2,\n'
        '                  merger=dict(type="STTM", layers=(1, 2))),\n'
        '    cls_head=dict(in_channels=32))\n')
    out = {}
    for name, path in (('sttm', str(sttm_cfg)), ('baseline', BASE_CONFIG)):
        cfg = Config.fromfile(path)
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        ckpt = str(root / f'{name}.pth')
        torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
        out[name] = (path, ckpt)
    return out


def test_load_clip_any_size_and_length(videos, models):
    cfg = Config.fromfile(models['sttm'][0])
    mean = torch.tensor(cfg.model.data_preprocessor.mean).view(3, 1, 1, 1)
    std = torch.tensor(cfg.model.data_preprocessor.std).view(3, 1, 1, 1)
    crop = cfg.crop_size
    for name in ('synthetic', 'wide', 'short'):
        clip, frames = load_clip(cfg, videos[name])
        # val pipeline: 8 frames (looped for the 5-frame video), centre crop.
        assert clip.shape == (1, 3, 8, crop, crop)
        assert frames.shape == (8, crop, crop, 3) and frames.dtype == np.uint8
        # The frames are what the network saw, before normalisation.
        seen = torch.from_numpy(frames).permute(3, 0, 1, 2).float()
        torch.testing.assert_close(clip[0], (seen - mean) / std)
    # The disc of the wide video is orange in RGB: red > blue.
    _, frames = load_clip(cfg, videos['wide'])
    disc = frames[0][frames[0].sum(-1) > 300].mean(0)
    assert disc[0] > disc[2] + 100  # (240, 180, 20) less codec blur
    # Multi-view test pipeline (ThreeCrop): pick a view.
    clip, frames = load_clip(cfg, videos['wide'], pipeline='test', view=2)
    assert clip.shape == (1, 3, 8, crop, crop)
    with pytest.raises(ValueError, match='view 3 out of range'):
        load_clip(cfg, videos['wide'], pipeline='test', view=3)


@pytest.mark.parametrize('name', ['empty', 'garbage'])
def test_load_clip_unreadable_file(videos, models, name):
    cfg = Config.fromfile(models['sttm'][0])
    with pytest.raises(ValueError, match='cannot read video') as info:
        load_clip(cfg, videos[name])
    assert videos[name] in str(info.value)
    # One clear message, not the reader's chained traceback.
    error = info.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_load_clip_missing_file(models, tmp_path):
    missing = str(tmp_path / 'nope.mp4')
    with pytest.raises(FileNotFoundError, match=missing):
        load_clip(Config.fromfile(models['sttm'][0]), missing)


def test_pictures(videos, models, tmp_path):
    cfg = Config.fromfile(models['sttm'][0])
    model = MODELS.build(cfg.model)
    clip, frames = load_clip(cfg, videos['synthetic'])
    trace = trace_merging(model, clip)
    # Every token that owns a patch has its own colour, in every frame.
    for index, stage in enumerate(trace.stages):
        colours = token_colours(stage.num_tokens)
        seen = np.concatenate([
            _merge_overlay(
                frames[t],
                trace.frame_map(index, t).numpy(),
                colours,
                1,
                1.0,
                borders=False).reshape(-1, 3) for t in range(trace.num_frames)
        ])
        assert len(np.unique(seen, axis=0)) == stage.num_owning
    sheet = draw_merge_sheet(trace, frames, max_frames=4)
    # 4 columns of 2x upscaled 56-pixel frames; input + 2 stage rows.
    assert sheet.width > 4 * 112 and sheet.height > 3 * 112
    heat = attention_rollout(model, clip)
    sheet = draw_attention_sheet({
        'model': heat,
        'baseline': heat[::2]
    }, frames)
    assert sheet.height > 3 * 112
    gif = save_animation(
        str(tmp_path / 'a.gif'), trace, frames, {'model': heat})
    assert Image.open(gif).n_frames == 8
    mp4 = save_animation(str(tmp_path / 'a.mp4'), trace, frames)
    assert cv2.VideoCapture(mp4).get(cv2.CAP_PROP_FRAME_COUNT) == 8
    with pytest.raises(ValueError, match='frames'):
        draw_merge_sheet(trace, frames[:3])


def _tool():
    return load_tool('visualize_merging', TOOL)


def test_tool_end_to_end(videos, models, tmp_path):
    """The command line as a user runs it, on a video unlike the training
    data, with the MMAction2 ViT baseline next to the merging model."""
    out = tmp_path / 'out'
    cmd = [
        sys.executable, TOOL, *models['sttm'], videos['wide'], '--out',
        str(out), '--baseline-config', models['baseline'][0],
        '--baseline-ckpt', models['baseline'][1]
    ]
    result = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ('merge_sheet.png', 'attention_sheet.png', 'merge.gif'):
        path = out / name
        assert path.is_file() and str(path) in result.stdout
    # input + 2 merge stages; input + model + baseline
    assert Image.open(out / 'merge_sheet.png').height > 3 * 112
    assert Image.open(out / 'attention_sheet.png').height > 3 * 112


def test_tool_short_video_and_bad_files(videos, models, tmp_path, capsys):
    tool = _tool()

    def run(video, *extra):
        """Exit status of the tool as its ``__main__`` block runs it."""
        with pytest.raises(SystemExit) as exit_info:
            tooling.run(
                tool.main,
                [*models['sttm'], video, '--out',
                 str(tmp_path), *extra])
        return exit_info.value.code

    assert run(videos['short'], '--format', 'mp4') == 0
    assert (tmp_path / 'merge.mp4').is_file()
    capsys.readouterr()
    # A file that cannot be used and a missing one alike: the tools' usage
    # status (2), one line.
    for name in ('empty', 'garbage'):
        assert run(videos[name]) == 2
        err = capsys.readouterr().err
        assert f'error: cannot read video {videos[name]!r}' in err
        assert 'Traceback' not in err
    assert run(str(tmp_path / 'missing.mp4')) == 2
    assert 'video file not found' in capsys.readouterr().err
