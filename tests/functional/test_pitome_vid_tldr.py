"""PiToMe's and vid-TLDR's steps against direct, loop-by-loop
implementations of the papers' formulas (and the authors' code's
choices), and on inputs whose answer is known."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmaction_sttm.functional.pitome import (energy_matching, energy_scores,
                                             layer_margin)
from mmaction_sttm.functional.tome import bipartite_plan
from mmaction_sttm.functional.vid_tldr import saliency, saliency_matching
from mmaction_sttm.models.backbones.base import attention_extras
from mmaction_sttm.registry import MODELS


def _partition(group):
    """A group index as a set of frozensets of token indices."""
    parts = {}
    for token, g in enumerate(group.tolist()):
        parts.setdefault(g, set()).add(token)
    return {frozenset(p) for p in parts.values()}


def _cos(u, v):
    return sum(a * b for a, b in zip(u, v)) / math.sqrt(
        sum(a * a for a in u) * sum(b * b for b in v))


def _energy_direct(x, margin, alpha):
    """sum_j f_m(cos(x_i, x_j)) / L with f_m the ELU shifted by m."""
    rows = x.tolist()
    out = []
    for u in rows:
        total = 0.0
        for v in rows:
            c = _cos(u, v) - margin
            total += c if c > 0 else alpha * (math.exp(c) - 1)
        out.append(total / len(rows))
    return out


def _pitome_direct(x, r, margin, alpha):
    """PiToMe's step as the authors' code does it, with Python loops."""
    energy = _energy_direct(x, margin, alpha)
    order = sorted(range(len(energy)), key=lambda i: (-energy[i], i))
    mergeable = order[:2 * r]
    set_a, set_b = mergeable[0::2], mergeable[1::2]
    rows = x.tolist()
    groups = {i: {i} for i in range(len(rows)) if i not in set_a}
    for a in set_a:
        best = max(set_b, key=lambda b: (_cos(rows[a], rows[b]), -b))
        groups[best].add(a)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize('margin', [0.9, 0.5, 0.1])
def test_energy_is_the_shifted_elu_mean(margin):
    x = torch.randn(2, 12, 8, generator=torch.Generator().manual_seed(1))
    energy, sim = energy_scores(x, margin, alpha=0.7)
    for b in range(2):
        torch.testing.assert_close(
            energy[b],
            torch.tensor(_energy_direct(x[b], margin, 0.7)),
            atol=1e-5,
            rtol=1e-5)
    torch.testing.assert_close(
        sim,
        F.cosine_similarity(x[:, :, None], x[:, None], dim=-1),
        atol=1e-5,
        rtol=1e-5)


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('r', [1, 4, 7])
def test_energy_matching_equals_the_direct_step(seed, r):
    x = torch.randn(3, 15, 6, generator=torch.Generator().manual_seed(seed))
    group = energy_matching(x, r, margin=0.5, alpha=1.0)
    assert int(group.max()) == 15 - r - 1
    for b in range(3):
        assert _partition(group[b]) == _pitome_direct(x[b], r, 0.5, 1.0)


def test_pitome_protects_the_isolated_token():
    """Twelve near-copies and one token unlike them: the near-copies have
    the high energies and merge; the isolated token stays as it was."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(1, 1, 8, generator=gen)
    x = base + 0.01 * torch.randn(1, 13, 8, generator=gen)
    x[0, 5] = -base[0, 0]
    merger = MODELS.build(dict(type='PiToMe', embed_dims=8, ratio=0.45))
    from mmaction_sttm.functional.tokens import Tokens
    out = merger(Tokens(x, torch.zeros(1, 13, 8), torch.ones(1, 13)), keys=x)
    assert out.x.shape[1] == 13 - 6
    assert (out.sizes == 1).sum() >= 1
    assert torch.isclose(out.x, x[0, 5]).all(-1).any()


def _tiny_vit(**merger):
    """A four-block SpaceTimeViT whose merges are ``merger``."""
    return MODELS.build(
        dict(
            type='SpaceTimeViT',
            img_size=32,
            patch_size=8,
            num_frames=4,
            embed_dims=32,
            depth=4,
            num_heads=2,
            merger=merger))


def test_pitome_margin_follows_depth_in_a_schedule():
    mergers = _tiny_vit(
        type='PiToMe', layers=(1, 3), ratio=0.3).merge_schedule.mergers
    assert mergers['1'].margin == pytest.approx(0.9)
    assert mergers['3'].margin == pytest.approx(0.9 - 0.8 * 2 / 4)
    assert layer_margin(3, 4) == pytest.approx(0.5)
    fixed = _tiny_vit(type='PiToMe', layers=(1, 3), ratio=0.3, margin=0.2)
    assert fixed.merge_schedule.mergers['3'].margin == pytest.approx(0.2)
    with pytest.raises(TypeError, match="unknown key 'layer'"):
        _tiny_vit(type='PiToMe', layers=(1, ), layer=2)


def _saliency_direct(sharp):
    """vid-TLDR's background removing and foreground sharpening."""
    s = [v - min(sharp) for v in sharp]
    s = [v / max(s) for v in s]
    mean = sum(s) / len(s)
    background = [v < mean for v in s]
    s = [v - mean for v in s]
    top = max(s)
    return [0.0 if bg else v / top for v, bg in zip(s, background)]


def test_saliency_is_the_papers_normalisation():
    sharp = -torch.rand(2, 10, generator=torch.Generator().manual_seed(3))
    got = saliency(sharp)
    for b in range(2):
        torch.testing.assert_close(
            got[b],
            torch.tensor(_saliency_direct(sharp[b].tolist())),
            atol=1e-6,
            rtol=1e-6)
    assert float(got.max()) == pytest.approx(1.0)
    # Constant sharpness: all background, no division by zero.
    assert torch.equal(saliency(torch.ones(1, 5)), torch.zeros(1, 5))


def test_saliency_matching_weighs_merged_tokens_by_saliency():
    """Against the authors' merge: x_dst' = (s_dst x_dst + sum s_src w_src
    x_src) / (s_dst + sum s_src w_src), size' = s_dst + sum s_src w_src,
    with w the saliency of each merged (source) token."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 14, 6, generator=gen)
    sizes = torch.rand(2, 14, generator=gen) + 0.5
    sharp = -torch.rand(2, 14, generator=gen)
    r = 5
    group, weights = saliency_matching(x, sharp, sizes, r)
    plan, removed = bipartite_plan(x, r)
    assert torch.equal(group, plan) and int(removed.sum()) == 2 * r
    sal = saliency(sharp)
    for b in range(2):
        for i in range(14):
            want = sizes[b, i] * (sal[b, i] if removed[b, i] else 1.0)
            assert float(weights[b, i]) == pytest.approx(float(want))
    merger = MODELS.build(dict(type='VidTLDR', embed_dims=6, ratio=5 / 14))
    from mmaction_sttm.functional.tokens import Tokens
    out = merger(Tokens(x, torch.zeros(1, 14, 6), sizes), sharpness=sharp)
    for b in range(2):
        for g in range(14 - r):
            members = (group[b] == g).nonzero().flatten()
            w = weights[b, members]
            torch.testing.assert_close(
                out.x[b, g], (w[:, None] * x[b, members]).sum(0) / w.sum(),
                atol=1e-5,
                rtol=1e-5)
            assert float(out.sizes[b, g]) == pytest.approx(
                float(w.sum()), rel=1e-5)


@pytest.mark.parametrize('has_cls', [False, True])
def test_sharpness_is_the_negative_entropy_of_the_mean_attention(has_cls):
    gen = torch.Generator().manual_seed(7)
    q = torch.randn(2, 3, 9, 4, generator=gen)
    k = torch.randn(2, 3, 9, 4, generator=gen)
    bias = torch.randn(2, 1, 1, 9, generator=gen)
    got = attention_extras(q, k, 0.5, bias, has_cls, ('sharpness', ),
                           2)['sharpness']
    attn = ((q @ k.transpose(-1, -2)) * 0.5 + bias).softmax(-1).mean(1)
    first = int(has_cls)
    want = (attn * attn.log()).sum(-1)[:, first:]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
