"""The registered STTM merger: its contract, its readings of the paper and
a direct implementation of eqs. 2-6 to check it against."""
import logging

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import load_state_dict

import mmaction_sttm  # noqa: F401
from mmaction_sttm.functional import sttm as algorithm
from mmaction_sttm.functional.sttm import (select_meta_tokens,
                                           select_meta_tokens_per_video)
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.models.mergers import sttm as sttm_module
from mmaction_sttm.models.mergers.sttm import FUSE_INITS, STTM
from mmaction_sttm.registry import MODELS


def _inputs(batch=3, length=24, dims=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, dims, generator=g)
    pos = torch.randn(1, length, dims, generator=g)
    cls = torch.randn(batch, dims, generator=g)
    return x, pos, cls


def _tokens(x, pos, sizes=None):
    if sizes is None:
        sizes = torch.ones(x.shape[:2])
    return Tokens(x, pos, sizes)


def _cosine(dims=16, **kwargs):
    return STTM(dims, meta_score='cosine', **kwargs)


def test_outputs_are_convex_combinations_of_inputs():
    x, pos, cls = _inputs()
    out = _cosine(ratio=0.5, motion=False).eval()(_tokens(x, pos), cls=cls)
    y, motion = out.x, out.pos
    assert y.shape == (3, 12, 16) and motion.shape == (3, 12, 16)
    # Every coordinate of a convex combination lies between the inputs'
    # extremes, for appearance and motion alike.
    lo, hi = x.min(1, keepdim=True).values, x.max(1, keepdim=True).values
    assert ((y >= lo - 1e-5) & (y <= hi + 1e-5)).all()
    plo, phi = pos.min(1, keepdim=True).values, pos.max(1, keepdim=True).values
    assert ((motion >= plo - 1e-5) & (motion <= phi + 1e-5)).all()


@pytest.mark.parametrize('with_sizes', [False, True])
def test_sizes_add_up(with_sizes):
    x, pos, cls = _inputs()
    sizes = torch.rand(3, 24) * 3 + 1 if with_sizes else None
    out = _cosine()(_tokens(x, pos, sizes), cls=cls).sizes
    total = sizes.sum(1) if with_sizes else torch.full((3, ), 24.)
    torch.testing.assert_close(out.sum(1), total)
    assert (out > 0).all()


def test_keep_all_with_identity_fusion_passes_tokens_unchanged():
    x, pos, cls = _inputs(length=50)
    merger = _cosine(ratio=0.001, fuse_init='identity')
    out = merger(_tokens(x, pos), cls=cls)
    assert merger.num_outputs(50) == 50
    torch.testing.assert_close(out.x, x)
    torch.testing.assert_close(out.pos, pos.expand_as(x))
    assert torch.equal(out.sizes, torch.ones(3, 50))


def test_identity_init_returns_appearance():
    x, pos, cls = _inputs()
    y1 = _cosine(fuse_init='identity')(_tokens(x, pos), cls=cls).x
    y2 = _cosine(
        fuse_init='identity', motion=False)(
            _tokens(x, pos), cls=cls).x
    torch.testing.assert_close(y1, y2)


def test_gradients_reach_phi_and_fuse():
    x, pos, cls = _inputs()
    x.requires_grad_(True)
    merger = _cosine(fuse_init='trunc_normal')
    y = merger(_tokens(x, pos), cls=cls).x
    (y**2).sum().backward()
    for param in (merger.phi.weight, merger.fuse.weight, merger.fuse.bias):
        assert param.grad is not None and param.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0


def test_deterministic_and_batch_independent():
    x, pos, cls = _inputs(batch=4)
    attn = torch.rand(4, 24).softmax(-1)
    merger = STTM(16).eval()
    with torch.no_grad():
        y1 = merger(_tokens(x, pos), cls_attn=attn).x
        y2 = merger(_tokens(x, pos), cls_attn=attn).x
        single = [
            merger(_tokens(x[i:i + 1], pos), cls_attn=attn[i:i + 1]).x
            for i in range(4)
        ]
    assert torch.equal(y1, y2)
    torch.testing.assert_close(torch.cat(single), y1, atol=1e-5, rtol=1e-5)


def test_cosine_uses_the_mean_token_without_cls():
    x, pos, _ = _inputs()
    merger = _cosine().eval()
    y = merger(_tokens(x, pos)).x
    y_mean = merger(_tokens(x, pos), cls=x.mean(1)).x
    torch.testing.assert_close(y, y_mean)


def test_attention_score_needs_cls_attn_and_follows_it(monkeypatch):
    x, pos, _ = _inputs(batch=1, length=8)
    merger = STTM(16, ratio=0.5, alpha=1.0, meta_filter=False)
    assert merger.needs == ('cls_attn', )
    with pytest.raises(ValueError, match='needs cls_attn'):
        merger(_tokens(x, pos))
    picked = []

    def recording(*args, **kwargs):
        out = select_meta_tokens_per_video(*args, **kwargs)
        picked.append(out[0])
        return out

    monkeypatch.setattr(sttm_module, 'select_meta_tokens_per_video', recording)
    # The greedy start is the most attended token: it is always a meta
    # token, whichever token that is.
    for top in (0, 5):
        attn = torch.full((1, 8), 0.01)
        attn[0, top] = 0.9
        merger(_tokens(x, pos), cls_attn=attn)
        assert top in picked[-1][0].tolist()


def test_random_greedy_start_draws_the_first_pick_from_the_generator(
        monkeypatch):
    x, pos, _ = _inputs(batch=4, length=10)
    starts = []

    def recording(*args, **kwargs):
        starts.append(args[6] if len(args) > 6 else kwargs.get('start'))
        return select_meta_tokens_per_video(*args, **kwargs)

    monkeypatch.setattr(sttm_module, 'select_meta_tokens_per_video', recording)
    attn = torch.softmax(torch.randn(4, 10), dim=1)
    STTM(16, ratio=0.5)(_tokens(x, pos), cls_attn=attn)
    assert starts[-1] is None  # 'attentive': the argmax inside
    merger = STTM(16, ratio=0.5, greedy_start='random')
    draws = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        merger(_tokens(x, pos), cls_attn=attn)
        draws.append(starts[-1])
    # One draw per sample, in range, and the runner's seed fixes it.
    assert draws[0].shape == (4, ) and draws[0].dtype == torch.long
    assert ((draws[0] >= 0) & (draws[0] < 10)).all()
    assert torch.equal(draws[0], draws[1])
    torch.manual_seed(0)
    assert torch.equal(draws[0], (torch.rand(4) * 10).long())
    assert not torch.equal(draws[0], draws[2])
    assert 'greedy_start' in repr(merger)


def test_an_explicit_greedy_start_is_always_a_candidate():
    x, _, _ = _inputs(batch=2, length=12)
    x_norm = F.normalize(x, dim=-1)
    scores = torch.rand(2, 12)
    for first in (3, 7):
        start = torch.tensor([first, first])
        # No filter: the start is picked first, whatever its score.
        meta = select_meta_tokens(
            x_norm, 5, scores, meta_filter=False, start=start)
        assert (meta == first).any(dim=1).all()


@pytest.mark.parametrize('kwargs,field', [
    (dict(ratio=0.), 'ratio'),
    (dict(ratio=1.), 'ratio'),
    (dict(ratio=-0.3), 'ratio'),
    (dict(alpha=0.5), 'alpha'),
    (dict(fuse_init='zeros'), 'fuse_init'),
    (dict(meta_score='cls'), 'meta_score'),
    (dict(tau=0.), 'tau'),
    (dict(greedy_start='first'), 'greedy_start'),
    (dict(fuse_init='residual', motion=False), 'residual'),
])
def test_bad_module_arguments(kwargs, field):
    with pytest.raises(ValueError, match=field):
        STTM(16, **kwargs)


def test_random_is_refused_with_the_named_readings():
    with pytest.raises(ValueError) as err:
        STTM(16, fuse_init='random')
    for name in FUSE_INITS:
        assert name in str(err.value)


def _singular_values(weight):
    return torch.linalg.svdvals(weight.detach())


def test_fuse_init_readings():
    dims = 16
    torch.manual_seed(0)
    identity = STTM(dims, fuse_init='identity')
    assert torch.equal(identity.phi.weight, torch.eye(dims))
    assert torch.equal(identity.fuse.weight[:, :dims], torch.eye(dims))
    assert identity.fuse.weight[:, dims:].abs().max() == 0
    normal = STTM(dims, fuse_init='trunc_normal')
    assert normal.fuse.weight.std() < 0.03
    assert _singular_values(normal.fuse.weight).max() < 0.5
    ortho = STTM(dims, fuse_init='orthogonal')
    # Norm preserving: every singular value of phi and of the appearance
    # block is one; the motion block is small.
    torch.testing.assert_close(
        _singular_values(ortho.phi.weight), torch.ones(dims))
    torch.testing.assert_close(
        _singular_values(ortho.fuse.weight[:, :dims]), torch.ones(dims))
    assert ortho.fuse.weight[:, dims:].std() < 0.03
    assert not torch.allclose(ortho.fuse.weight[:, :dims], torch.eye(dims))
    residual = STTM(dims, fuse_init='residual')
    torch.testing.assert_close(
        _singular_values(residual.phi.weight), torch.ones(dims))
    for merger in (normal, ortho, residual):
        assert merger.phi.bias.abs().max() == 0
        assert merger.fuse.bias.abs().max() == 0


def test_residual_adds_the_appearance():
    x, pos, cls = _inputs()
    merger = _cosine(fuse_init='residual')
    out = merger(
        _tokens(x, pos).replace(sources=torch.eye(24).expand(3, -1, -1)),
        cls=cls)
    weights = out.assign * torch.ones(3, 24, 1)
    weights = weights / weights.sum(1, keepdim=True)
    appearance = weights.transpose(1, 2) @ x
    motion = weights.transpose(1, 2) @ pos
    expected = appearance + merger.fuse(torch.cat([appearance, motion], -1))
    torch.testing.assert_close(out.x, expected, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------
# A direct implementation of eqs. 2-6 (sec. 3.2), loops over the formula


def _direct_sttm(merger, x, pos, sizes, scores, num_meta):
    """STTM on one sample ``x (L, D)`` written from the paper."""
    length = x.shape[0]
    num_cand = min(length, int(torch.tensor(merger.alpha * num_meta).ceil()))
    unit = [x[i] / x[i].norm() for i in range(length)]
    # Eq. 3: greedy most-orthogonal selection from the top-scoring token.
    picked = [int(scores.argmax())]
    while len(picked) < num_cand:
        best, best_val = None, None
        for j in range(length):
            if j in picked:
                continue
            val = max(abs(float(unit[j] @ unit[i])) for i in picked)
            if best_val is None or val < best_val:
                best, best_val = j, val
        picked.append(best)
    # Meta filter: the num_meta most attentive candidates, in source order.
    picked = sorted(picked, key=lambda i: -float(scores[i]))[:num_meta]
    meta = sorted(picked)
    # Eq. 4: correspondence of every token to every meta token.
    enc = [merger.phi(x[i]) for i in range(length)]
    enc = [e / e.norm() for e in enc]
    corr = torch.zeros(length, num_meta)
    for i in range(length):
        logits = torch.stack([enc[i] @ enc[m] for m in meta]) / merger.tau
        corr[i] = logits.softmax(dim=0)
    mass = corr * sizes[:, None]
    weights = mass / mass.sum(dim=0, keepdim=True)
    # Eqs. 5, 6: appearance and motion aggregation.
    appearance = torch.stack([
        sum(weights[i, k] * x[i] for i in range(length))
        for k in range(num_meta)
    ])
    motion = torch.stack([
        sum(weights[i, k] * pos[i] for i in range(length))
        for k in range(num_meta)
    ])
    # Eq. 2: fusion of appearance and motion.
    fused = torch.cat([appearance, motion], dim=-1) @ merger.fuse.weight.T \
        + merger.fuse.bias
    return fused, motion, mass.sum(dim=0)


@pytest.mark.parametrize('fuse_init', ['trunc_normal', 'orthogonal'])
def test_fused_output_matches_eqs_2_to_6(fuse_init):
    torch.manual_seed(0)
    length, dims = 12, 8
    merger = STTM(dims, ratio=0.5, alpha=1.5, fuse_init=fuse_init, tau=0.1)
    with torch.no_grad():
        merger.phi.bias.normal_()
        merger.fuse.bias.normal_()
    x = torch.randn(2, length, dims)
    pos = torch.randn(2, length, dims)
    sizes = torch.rand(2, length) + 0.5
    attn = torch.rand(2, length).softmax(-1)
    with torch.no_grad():
        out = merger(Tokens(x, pos, sizes), cls_attn=attn)
        for b in range(2):
            fused, motion, new_sizes = _direct_sttm(merger, x[b], pos[b],
                                                    sizes[b], attn[b], 6)
            torch.testing.assert_close(out.x[b], fused, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(
                out.pos[b], motion, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out.sizes[b], new_sizes)


def test_bf16_autocast_is_finite_and_picks_the_fp32_meta_tokens(monkeypatch):
    # Well-separated inputs: 6 orthogonal directions, each the centre of a
    # tight cluster of 4 tokens; one meta token per cluster.
    torch.manual_seed(0)
    dims, groups = 16, 6
    centres = torch.linalg.qr(torch.randn(dims, dims))[0][:groups] * 4
    x = (centres.repeat_interleave(4, 0) +
         0.05 * torch.randn(groups * 4, dims))[None]
    pos = torch.randn(1, groups * 4, dims)
    attn = torch.rand(1, groups * 4).softmax(-1)
    merger = STTM(dims, ratio=0.75, alpha=1.0, fuse_init='orthogonal')
    picked = []

    def recording(*args, **kwargs):
        out = select_meta_tokens_per_video(*args, **kwargs)
        picked.append(out[0])
        return out

    monkeypatch.setattr(sttm_module, 'select_meta_tokens_per_video', recording)
    # The similarities the greedy steps compare, and the correspondence
    # logits, are float32 under bf16 autocast (issue 10).
    sim_dtypes, logit_dtypes = [], []
    greedy, bmm = algorithm.greedy_select, algorithm.fp32_bmm

    def greedy_recording(sim, start, num):
        sim_dtypes.append(sim.dtype)
        return greedy(sim, start, num)

    def bmm_recording(a, b):
        logit_dtypes.append(bmm(a, b).dtype)
        return bmm(a, b)

    monkeypatch.setattr(algorithm, 'greedy_select', greedy_recording)
    monkeypatch.setattr(algorithm, 'fp32_bmm', bmm_recording)
    tokens = Tokens(x, pos, torch.ones(1, groups * 4))
    with torch.no_grad():
        ref = merger(tokens, cls_attn=attn)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = merger(tokens, cls_attn=attn)
    assert low.x.dtype == torch.bfloat16
    assert torch.isfinite(low.x.float()).all()
    assert torch.isfinite(low.sizes).all()
    # The same meta tokens, one per cluster, and the same token sizes.
    assert torch.equal(picked[0], picked[1])
    assert sorted((picked[0][0] // 4).tolist()) == list(range(groups))
    assert sim_dtypes == [torch.float32] * 2
    assert len(logit_dtypes) == 4  # similarities and logits, twice
    assert set(logit_dtypes) == {torch.float32}
    torch.testing.assert_close(low.sizes, ref.sizes, atol=0.02, rtol=0.01)


# ----------------------------------------------------------------------
# Init order and checkpoints


@pytest.mark.parametrize('fuse_init', ['identity', 'orthogonal'])
def test_backbone_init_leaves_the_merger_init(fuse_init):
    # SpaceTimeViT's default init_cfg is TruncNormal on every Linear, the
    # merger's included; the merger's own init must win in either order.
    cfg = dict(
        type='SpaceTimeViT',
        img_size=32,
        patch_size=8,
        num_frames=2,
        embed_dims=16,
        depth=3,
        num_heads=2,
        merger=dict(type='STTM', layers=(1, 2), fuse_init=fuse_init))
    for merger_first in (False, True):
        torch.manual_seed(0)
        model = MODELS.build(cfg)
        merger = model.merge_schedule.mergers['1']
        if merger_first:
            merger.init_weights()
        model.init_weights()
        svals = _singular_values(merger.phi.weight)
        torch.testing.assert_close(svals, torch.ones(16))
        if fuse_init == 'identity':
            assert torch.equal(merger.phi.weight, torch.eye(16))


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_checkpoint_without_merger_weights_logs_one_line():
    cfg = dict(
        type='SpaceTimeViT',
        img_size=32,
        patch_size=8,
        num_frames=2,
        embed_dims=16,
        depth=3,
        num_heads=2)
    plain = MODELS.build(cfg).state_dict()
    model = MODELS.build(
        dict(
            cfg,
            merger=dict(type='STTM', layers=(1, ), fuse_init='orthogonal')))
    logger = MMLogger.get_current_instance()
    records = _Records()
    logger.addHandler(records)
    level = logger.level
    logger.setLevel('INFO')  # a tool run earlier may have quietened it
    try:
        load_state_dict(model, plain, strict=False, logger=logger)
        first = [
            line for line in records.lines
            if 'no weights' in line or 'missing' in line
        ]
        records.lines.clear()
        merged = model.state_dict()
        other = MODELS.build(dict(cfg, merger=dict(type='STTM', layers=(1, ))))
        result = other.load_state_dict(merged, strict=True)
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    assert first == [
        'merge_schedule.mergers.1: no weights in the checkpoint; the merger '
        "starts from its init (fuse_init='orthogonal')"
    ]
    # A checkpoint that has them loads them, without the message.
    assert not any('no weights' in line for line in records.lines)
    assert not result.missing_keys
    assert torch.equal(other.merge_schedule.mergers['1'].phi.weight,
                       model.merge_schedule.mergers['1'].phi.weight)
    # Half a merger is a real mismatch and stays reported.
    partial = {k: v for k, v in merged.items() if 'fuse' not in k}
    result = other.load_state_dict(partial, strict=False)
    assert sorted(result.missing_keys) == [
        'merge_schedule.mergers.1.fuse.bias',
        'merge_schedule.mergers.1.fuse.weight'
    ]


@pytest.mark.parametrize('family', ['vit', 'timesformer'])
def test_backbone_under_cpu_bf16_autocast_is_finite(family):
    """A whole tiny backbone with STTM under CPU bf16 autocast (as
    ``benchmark.py --amp bf16`` runs it): finite features, close to fp32."""
    from mmaction.utils import register_all_modules
    from tiny_backbones import BACKBONES, FRAMES, SIZE
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            BACKBONES[family],
            merger=dict(type='STTM', layers=(1, 2),
                        fuse_init='orthogonal'))).eval()
    model.init_weights()
    clips = torch.randn(2, 3, FRAMES, SIZE, SIZE)
    with torch.no_grad():
        ref = model(clips)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = model(clips)
    # The final norm runs in float32 under autocast; the blocks in bf16
    # leave their rounding in it.
    assert not torch.equal(low.float(), ref)
    assert torch.isfinite(low.float()).all()
    torch.testing.assert_close(low.float(), ref, atol=0.1, rtol=0.05)
