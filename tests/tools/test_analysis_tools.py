"""Seconds-long runs of the benchmark tool, so that it keeps working (its
real runs are documented in docs/benchmark.md)."""
import csv
import json
import os.path as osp

import numpy as np
import pytest
from tool_modules import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VIT = 'configs/synthetic/spacetime-vit-tiny-p8_scratch_2xb8-8x2x1-20e_synthetic-motion-rgb.py'  # noqa: E501
STTM = 'configs/synthetic/sttm_spacetime-vit-tiny-p8_scratch_2xb8-8x2x1-20e_synthetic-motion-rgb.py'  # noqa: E501


def _tool(name: str):
    path = osp.join(ROOT, 'tools', 'analysis_tools', f'{name}.py')
    return load_tool(f'tool_{name}', path)


def test_benchmark_smoke(tmp_path):
    bench = _tool('benchmark')
    out = str(tmp_path / 'bench')
    bench.main([
        osp.join(ROOT, VIT),
        osp.join(ROOT, STTM), '--shape', '3', '8', '56', '56', '--batch-sizes',
        '2', '--modes', 'inference', 'train', '--warmup', '0', '--repeats',
        '1', '--device', 'cpu', '--out', out
    ])
    with open(osp.join(out, 'benchmark.csv')) as f:
        rows = list(csv.DictReader(f))
    assert [(r['config'].startswith('sttm_'), r['mode'])
            for r in rows] == [(False, 'inference'), (True, 'inference'),
                               (False, 'train'), (True, 'train')]
    for row in rows:
        assert float(row['clips_per_s']) > 0
        assert float(row['peak_mem_mib']) > 0
    baseline, merged = rows[0], rows[1]
    assert float(baseline['merge_share']) == 0
    assert 0 < float(merged['merge_share']) < 1
    assert float(merged['flop_ratio']) > 1.2
    assert 'speed-up / FLOP ratio' in open(osp.join(out,
                                                    'benchmark.md')).read()


def test_benchmark_breakdown_counts_each_part_of_the_merges(tmp_path):
    """--breakdown: every part's multiply-adds, read off the profiler,
    equal eqs. 3-6 counted by hand for the tiny model's two merges."""
    from mmaction_sttm.functional.sttm import num_meta_tokens
    bench = _tool('benchmark')
    out = str(tmp_path / 'parts')
    batch = 2
    bench.main([
        osp.join(ROOT, VIT),
        osp.join(ROOT, STTM), '--shape', '3', '8', '56', '56', '--batch-sizes',
        str(batch), '--warmup', '0', '--repeats', '2', '--device', 'cpu',
        '--breakdown', '--out', out
    ])
    with open(osp.join(out, 'benchmark.json')) as f:
        merged = json.load(f)['rows'][1]
    # Tiny ViT: D = 128, 8 frames of 7 x 7 patches; a spatial merge inside
    # each frame after block 2, a spatio-temporal one after block 3.
    dims, frames, per_frame = 128, 8, 49
    spatial_out = num_meta_tokens(per_frame, 0.5)
    joint_in = frames * spatial_out
    merges = [(batch * frames, per_frame, spatial_out),
              (batch, joint_in, num_meta_tokens(joint_in, 0.5))]
    expected = dict(selection=0, correspondence=0, aggregation=0, fusion=0)
    for groups, length, out_len in merges:
        expected['selection'] += groups * length * length * dims  # X X^T
        expected['correspondence'] += groups * length * out_len * dims
        expected['aggregation'] += 2 * groups * length * out_len * dims
        expected['fusion'] += groups * (
            length * dims * dims  # phi
            + out_len * 2 * dims * dims)
    model_macs = batch * merged['gflops'] * 1e9
    for part, macs in expected.items():
        assert merged[f'flop_share_{part}'] * model_macs == \
            pytest.approx(macs, rel=1e-6), part
        assert 0 < merged[f'share_{part}'] < 1
    table = open(osp.join(out, 'benchmark.md')).read()
    assert 'Merge breakdown' in table and '%)' in table


def test_benchmark_memory_only(tmp_path):
    """--memory-only: one profiled step per setting, no timings; merging
    saves training memory."""
    bench = _tool('benchmark')
    out = str(tmp_path / 'mem')
    bench.main([
        osp.join(ROOT, VIT),
        osp.join(ROOT,
                 STTM), '--shape', '3', '8', '56', '56', '--batch-sizes', '2',
        '--modes', 'train', '--device', 'cpu', '--memory-only', '--out', out
    ])
    with open(osp.join(out, 'benchmark.csv')) as f:
        rows = list(csv.DictReader(f))
    assert [r['mode'] for r in rows] == ['train', 'train']
    assert 'clips_per_s' not in rows[0]
    base, merged = (float(r['peak_mem_mib']) for r in rows)
    assert 0 < merged < base
    assert '| peak MiB | + weights, input MiB | vs. first |' in open(
        osp.join(out, 'benchmark.md')).read()


# --- get_flops.py ----------------------------------------------------------


def _zoo_rows():
    module = load_tool(
        'check_zoo_readme',
        osp.join(ROOT, 'tools', 'analysis_tools', 'check_zoo_readme.py'))
    return {row.config: row for row in module.parse_readme()}


def test_get_flops_view_of_every_zoo_config():
    """The shape read from each zoo config's test pipeline is the one its
    backbone is built for: the README's frames at 224x224, 3 crops."""
    from mmengine.config import Config
    get_flops = _tool('get_flops')
    for config in _zoo_rows():
        cfg = Config.fromfile(osp.join(ROOT, config))
        view = get_flops.pipeline_view(cfg)
        assert view == dict(
            clip_len=cfg.model.backbone.num_frames, crop=(224, 224),
            views=3), config
        shape, source = get_flops.input_shape(None, view)
        assert shape == (1, 3, cfg.model.backbone.num_frames, 224, 224)
        assert source == 'from the test pipeline'


@pytest.mark.parametrize(
    'shape,expected',
    [
        ([1, 3, 8, 224, 224], (1, 3, 8, 224, 224)),  # MMAction2's form
        ([2, 3, 8, 160, 160], (2, 3, 8, 160, 160)),
        ([16, 224, 224], (1, 3, 16, 224, 224)),
        ([160, 128], (1, 3, 13, 160, 128)),  # frames from the pipeline
        ([160], (1, 3, 13, 160, 160)),
    ])
def test_get_flops_shape_forms(shape, expected):
    get_flops = _tool('get_flops')
    view = dict(clip_len=13, crop=(224, 224), views=3)
    assert get_flops.input_shape(shape, view)[0] == expected


def test_get_flops_shape_errors():
    from mmaction_sttm.tooling import ToolError
    get_flops = _tool('get_flops')
    with pytest.raises(ToolError, match='1, 2, 3 or 5 numbers'):
        get_flops.input_shape([1, 1, 3, 8, 224, 224], {})
    # MMAction2 reads 4 numbers as a 2D recognizer's N C H W: refused.
    with pytest.raises(ToolError, match='4 numbers are N C H W'):
        get_flops.input_shape([1, 3, 224, 224], {})
    with pytest.raises(ToolError, match='no clip len'):
        get_flops.input_shape(None, dict(clip_len=None, crop=(224, 224)))


@pytest.mark.parametrize('config', [
    'configs/sttm/sttm_vit-small-p16_in1k-pre_8xb8-8x8x1-30e_'
    'kinetics400-rgb.py',
    'configs/sttm/sttm_vit-base-p16_in1k-pre_8xb8-11x8x1-30e_'
    'kinetics400-rgb.py',
    'configs/sttm/sttm_vit-small-p16_in1k-pre_8xb8-13x8x1-30e_'
    'kinetics400-rgb.py',
])
def test_get_flops_zoo_configs_without_arguments(config, capsys, tmp_path,
                                                 monkeypatch):
    """`get_flops.py CONFIG` alone: no checkpoint needed (none exists here),
    the frames of the config, the README's GFLOPs within 2%."""
    monkeypatch.chdir(tmp_path)  # no checkpoints/ folder in reach
    row = _zoo_rows()[config]
    _tool('get_flops').main([osp.join(ROOT, config), '--json'])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    frames = result['shape'][2]
    assert result['shape'] == [1, 3, frames, 224, 224]
    assert str(frames) + 'x8x1' in config
    assert result['gflops'] == pytest.approx(row.gflops, rel=0.02)
    assert result['params_m'] == pytest.approx(row.params, rel=0.01)
    assert result['views'] == 3


def test_get_flops_counts_the_model_without_its_merger(capsys):
    """On a merging config, the unmerged GFLOPs are those of the baseline
    config (the same network without the merger), and the ratio theirs."""
    get_flops = _tool('get_flops')
    results = []
    for config in (STTM, VIT):
        get_flops.main([osp.join(ROOT, config), '--json'])
        results.append(
            json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    merged, baseline = results
    assert 'unmerged_gflops' not in baseline
    assert merged['unmerged_gflops'] == pytest.approx(
        baseline['gflops'], rel=1e-9)
    assert merged['flop_ratio'] == pytest.approx(merged['gflops'] /
                                                 baseline['gflops'])
    assert 0.5 < merged['flop_ratio'] < 0.9
    get_flops.main([osp.join(ROOT, STTM)])
    out = capsys.readouterr().out
    assert (f'GFLOPs per view without the merger: '
            f'{baseline["gflops"]:.4g} (model.backbone.merger=None); ratio '
            f'{merged["flop_ratio"]:.3f}') in out


def test_get_flops_table_and_text(capsys, monkeypatch):
    get_flops = _tool('get_flops')
    get_flops.main([
        osp.join(ROOT, VIT), '--shape', '1', '3', '8', '32', '32', '--table',
        '1'
    ])
    out = capsys.readouterr().out
    assert '| module' in out and 'backbone' in out
    assert 'input counted: 1x3x8x32x32 (N C T H W, --shape N C T H W)' in out
    assert 'GFLOPs per view: ' in out


RLT_CFG = 'configs/synthetic/rlt/rlt_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-static-rgb.py'  # noqa: E501
CONFIRM_CFG = 'configs/synthetic/confirm/confirm_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py'  # noqa: E501


@pytest.fixture(scope='module')
def static_videos(tmp_path_factory):
    """Four static-camera videos at the study's size."""
    from mmaction_sttm.generators import SyntheticSpec, make_synthetic_dataset
    root = str(tmp_path_factory.mktemp('static'))
    make_synthetic_dataset(
        root,
        SyntheticSpec(
            num_classes=2,
            train_per_class=1,
            val_per_class=2,
            resolution=32,
            num_frames=24,
            camera='static'),
        splits=('val', ))
    return root


@pytest.mark.parametrize('threshold, tokens', [(0.0, 64), (1e9, 16)])
def test_get_flops_over_videos_counts_what_rlt_keeps(static_videos, capsys,
                                                     threshold, tokens):
    """Threshold 0 keeps all 4 x 16 tokens (and costs what the model without
    RLT costs); an infinite one keeps the first step's 16 only."""
    get_flops = _tool('get_flops')
    get_flops.main([
        osp.join(ROOT, RLT_CFG), '--videos',
        osp.join(static_videos, 'val_list_videos.txt'), '--video-prefix',
        osp.join(static_videos, 'videos'), '--json', '--cfg-options',
        f'model.backbone.reducer.threshold={threshold}'
    ])
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record['num_videos'] == 4
    assert record['tokens_min'] == record['tokens_max'] == tokens
    assert record['gflops_min'] == record['gflops_max']
    listed = [
        line.split()[0]
        for line in open(osp.join(static_videos, 'val_list_videos.txt'))
    ]
    assert [row['video'] for row in record['per_video']] == listed
    assert {row['tokens'] for row in record['per_video']} == {tokens}
    if tokens == 64:
        assert record['gflops_mean'] == pytest.approx(
            record['unreduced_gflops'], rel=1e-9)
    else:
        assert record['gflops_mean'] < 0.3 * record['unreduced_gflops']


def _mmaction2_videos():
    """Real videos of an MMAction2 source checkout (installed with
    ``pip install -e``): two static-camera recordings (NTU RGB+D, and the
    skeleton demo's room) and a hand-held Kinetics clip. None when
    MMAction2 came from a wheel, which ships no videos."""
    import mmaction
    root = osp.dirname(osp.dirname(osp.abspath(mmaction.__file__)))
    videos = dict(
        static=[
            'tools/data/skeleton/S001C001P001R001A001_rgb.avi',
            'demo/demo_skeleton.mp4'
        ],
        handheld=['demo/demo.mp4'])
    if not all(
            osp.exists(osp.join(root, v)) for vs in videos.values()
            for v in vs):
        return None
    return root, videos


@pytest.mark.skipif(
    _mmaction2_videos() is None,
    reason='needs MMAction2 installed from its source')
def test_rlt_on_real_videos(tmp_path, capsys):
    """On MMAction2's own videos, RLT (ViT-S/16, 8 frames, threshold 0.1)
    removes most tokens of the static-camera ones and few of the hand-held
    one (measured: 86% and 76% against 11%, docs/mergers.md)."""
    root, videos = _mmaction2_videos()
    listed = videos['static'] + videos['handheld']
    ann = tmp_path / 'list.txt'
    ann.write_text(''.join(f'{v} 0\n' for v in listed))
    _tool('get_flops').main([
        osp.join(
            ROOT, 'configs/rlt/rlt_vit-small-p16_in1k-pre_8xb8-8x8x1-'
            '30e_kinetics400-rgb.py'), '--videos',
        str(ann), '--video-prefix', root, '--json'
    ])
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    removed = {
        row['video']: 1 - row['tokens'] / 1568
        for row in record['per_video']
    }
    for video in videos['static']:
        assert removed[video] > 0.6, (video, removed)
    for video in videos['handheld']:
        assert removed[video] < 0.3, (video, removed)


def test_benchmark_on_videos(static_videos, tmp_path):
    bench = _tool('benchmark')
    out = str(tmp_path / 'bench')
    bench.main([
        osp.join(ROOT, CONFIRM_CFG),
        osp.join(ROOT, RLT_CFG), '--videos',
        osp.join(static_videos, 'val_list_videos.txt'), '--video-prefix',
        osp.join(static_videos, 'videos'), '--batch-sizes', '2', '--warmup',
        '0', '--repeats', '1', '--device', 'cpu', '--out', out,
        '--cfg-options', 'model.backbone.init_cfg=None'
    ])
    with open(osp.join(out, 'benchmark.csv')) as f:
        rows = list(csv.DictReader(f))
    assert float(rows[1]['gflops']) <= float(rows[0]['gflops'])
    assert all(float(r['clips_per_s']) > 0 for r in rows)


def test_object_retention_measures():
    """Purity and object tokens per step on hand-made merge maps."""
    import torch

    from mmaction_sttm.visualization.merge_maps import MergeTrace, StageMap

    tool = _tool('object_retention')
    # 2 steps x 1 x 2 patches of 4x4 pixels; the white core in patch 0 of
    # step 0 and patch 1 of step 1.
    frames = np.zeros((2, 4, 8, 3), dtype=np.uint8)
    frames[0, :2, :2] = 255
    frames[1, :2, 5:7] = 255
    obj = tool.object_patches(frames, (2, 1, 2), tubelet=1)
    assert obj.tolist() == [True, False, False, True]

    def trace(sources):
        sources = torch.tensor(sources, dtype=torch.float32)
        stage = StageMap(2, 'spatiotemporal',
                         sources.argmax(1).reshape(2, 1, 2), sources,
                         sources.sum(0), None)
        embed = StageMap(0, 'embedding',
                         torch.arange(4).reshape(2, 1, 2), torch.eye(4),
                         torch.ones(4), 2)
        return MergeTrace(
            stages=[embed, stage],
            grid=(2, 1, 2),
            tubelet=1,
            patch_size=(4, 4),
            num_frames=2,
            has_cls=False)

    # Each step's object in a token of its own, pure.
    kept = tool.retention(
        trace([[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0]]), obj)
    assert kept == {'purity@2': 1.0, 'tokens/step': 1.0}
    # Both steps' object blended into one token with the background:
    # object mass 2 of its 3.
    blended = tool.retention(trace([[1, 0], [0, 1], [1, 0], [1, 0]]), obj)
    assert blended['purity@2'] == pytest.approx(2 / 3)
    assert blended['tokens/step'] == 0.5


def test_get_flops_says_a_reducers_count_is_for_a_clip_with_nothing_static(
        capsys):
    """Without --videos, a content-adaptive reducer's GFLOPs are those of
    a random clip (nothing dropped): one line says so and how to get the
    mean; a config without a reducer has no such line."""
    get_flops = _tool('get_flops')
    rlt = osp.join(
        ROOT, 'configs', 'synthetic', 'rlt',
        'rlt_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_'
        'synthetic-static-rgb.py')
    get_flops.main([rlt])
    notes = [
        line for line in capsys.readouterr().out.splitlines()
        if line.startswith('note: model.backbone.reducer')
    ]
    assert len(notes) == 1 and 'nothing is static' in notes[0] and \
        '--videos LIST --video-prefix FOLDER' in notes[0]
    get_flops.main([rlt, '--cfg-options', 'model.backbone.reducer=None'])
    assert 'note: model.backbone.reducer' not in capsys.readouterr().out


def test_graph_count_of_rlt_without_a_merger_does_not_grow_with_the_batch():
    """graph_count.py: RLT alone (padded) compiles to the same graphs at
    batch 2 and 4, each video a different token count; the clips it makes
    do differ in count."""
    graph_count = _tool('graph_count')
    x = graph_count.clip(4, 4, 32)
    static = [(x[b, :, 1:] == x[b, :, :1]).all(1).float().mean().item()
              for b in range(4)]
    assert len(set(static)) == 4
    counts = [
        graph_count.count('vit', 'none', 'padded', b)['graphs'] for b in (2, 4)
    ]
    assert counts[0] == counts[1] >= 1


@pytest.mark.parametrize('mode', ['padded', 'packed'])
@pytest.mark.parametrize('merger', ['STTM', 'ToMe'])
def test_graph_count_with_a_merger_after_rlt_is_small_and_constant(
        merger, mode):
    """Mask-aware mergers run on the whole padded batch: with STTM or ToMe
    after RLT, padded or packed, the studies' 4-block model compiles to as
    many graphs at batch 2, 4 and 8 (each video another token count), and
    to at most 6 (the per-video loops made 17-30)."""
    graph_count = _tool('graph_count')
    counts = [
        graph_count.count('vit', merger, mode, b)['graphs'] for b in (2, 4, 8)
    ]
    assert counts[0] == counts[1] == counts[2] <= 6, counts
