"""ToMe by keys and EViT by CLS attention inside a backbone, against small
direct implementations of their papers' formulas (ToMe sec. 3, EViT
sec. 3), computed from the backbone's own weights."""
import math

import pytest
import torch

import mmaction_sttm  # noqa: F401
from mmaction_sttm.registry import MODELS

DIMS, HEADS = 16, 2


def _model(merger):
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='SpaceTimeViT',
            img_size=32,
            patch_size=8,
            num_frames=2,
            embed_dims=DIMS,
            depth=2,
            num_heads=HEADS,
            merger=dict(layers=(1, ), stages=('spatiotemporal', ), **merger)))
    # PyTorch's default init: attention far from uniform.
    return model.eval()


def _first_block(model, clip):
    """Block 1's input sequence, its queries and keys per head (from the
    block's own weights) and its output patch tokens."""
    cls, tokens = model.embed(clip)
    seq = torch.cat([cls, tokens.x], dim=1)
    block = model.blocks[0]
    h = block.norm1(seq)
    weight, bias = block.attn.qkv.weight, block.attn.qkv.bias
    q = h @ weight[:DIMS].T + bias[:DIMS]
    k = h @ weight[DIMS:2 * DIMS].T + bias[DIMS:2 * DIMS]
    split = lambda t: t.reshape(t.shape[0], t.shape[1], HEADS, -1)  # noqa
    return split(q), split(k), block(seq)[:, 1:]


def _direct_tome(x, keys, num_remove):
    """ToMe's bipartite soft matching: A = even, B = odd tokens; each A
    token's most similar B token (cosine of the keys); the r best edges
    merge by averaging (sizes one); outputs in the source order of their
    representative token."""
    length = x.shape[0]
    unit = keys / keys.norm(dim=-1, keepdim=True)
    set_a, set_b = list(range(0, length, 2)), list(range(1, length, 2))
    best = {}
    for a in set_a:
        sims = [float(unit[a] @ unit[b]) for b in set_b]
        j = max(range(len(set_b)), key=lambda i: sims[i])
        best[a] = (sims[j], set_b[j])
    order = sorted(set_a, key=lambda a: -best[a][0])
    rep = list(range(length))
    for a in order[:num_remove]:
        rep[a] = best[a][1]
    outputs = sorted(set(rep))
    return torch.stack([
        torch.stack([x[i] for i in range(length) if rep[i] == r]).mean(0)
        for r in outputs
    ])


def _direct_evit(x, attn, num_keep):
    """EViT: keep the k tokens the CLS token attends to most, in order,
    and fuse the others weighted by their attention."""
    order = sorted(range(x.shape[0]), key=lambda i: -float(attn[i]))
    kept = sorted(order[:num_keep])
    rest = order[num_keep:]
    weights = torch.stack([attn[i] for i in rest])
    fused = sum(w * x[i] for w, i in zip(weights, rest)) / weights.sum()
    return torch.cat([x[kept], fused[None]])


@pytest.mark.parametrize('ratio', [0.25, 0.5])
def test_tome_matches_by_the_keys_of_the_block_before(ratio):
    model = _model(dict(type='ToMe', ratio=ratio))
    clip = torch.randn(2, 3, 2, 32, 32)
    with torch.no_grad():
        _, stages = model.forward_tokens(clip)
        _, k, x = _first_block(model, clip)
        keys = k[:, 1:].mean(dim=2)  # patch tokens, mean over heads
        length = x.shape[1]
        num_remove = length - math.floor(length * (1 - ratio) + 0.5)
        for b in range(2):
            expected = _direct_tome(x[b], keys[b], num_remove)
            torch.testing.assert_close(stages[1].x[b], expected)
        # The tokens' own similarity gives another matching here.
        tokens_model = _model(dict(type='ToMe', ratio=ratio, metric='tokens'))
        tokens_model.load_state_dict(model.state_dict())
        other = tokens_model.forward_tokens(clip)[1][1].x
    assert not torch.allclose(other, stages[1].x)


def test_evit_keeps_the_tokens_the_cls_token_attends_to():
    model = _model(dict(type='EViT', ratio=0.5))
    clip = torch.randn(2, 3, 2, 32, 32)
    with torch.no_grad():
        _, stages = model.forward_tokens(clip)
        q, k, x = _first_block(model, clip)
        scale = (DIMS // HEADS)**-0.5
        # softmax over all 1 + L keys of the CLS query, per head.
        logits = torch.einsum('bhd,blhd->bhl', q[:, 0], k) * scale
        attn = logits.softmax(dim=-1)[:, :, 1:].mean(dim=1)
        length = x.shape[1]
        for b in range(2):
            expected = _direct_evit(x[b], attn[b], length // 2)
            torch.testing.assert_close(stages[1].x[b], expected)


def test_without_cls_the_mean_query_attends():
    """MMAction2's VideoMAE ViT has no CLS token: the attention score is
    that of the mean query, softmax(mean(q) k^T / sqrt(d)), mean over
    heads."""
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='MergingVisionTransformer',
            img_size=32,
            patch_size=8,
            embed_dims=DIMS,
            depth=2,
            num_heads=HEADS,
            num_frames=4,
            tubelet_size=2,
            merger=dict(
                type='EViT',
                layers=(1, ),
                stages=('spatiotemporal', ),
                ratio=0.5))).eval()
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        _, stages = model.forward_tokens(clip)
        _, tokens = model.embed(clip)
        block = model.blocks[0]
        h = block.norm1(tokens.x)
        q = (h @ block.attn.qkv.weight[:DIMS].T + block.attn.q_bias)
        k = h @ block.attn.qkv.weight[DIMS:2 * DIMS].T
        q = q.reshape(1, -1, HEADS, DIMS // HEADS).mean(dim=1)
        k = k.reshape(1, -1, HEADS, DIMS // HEADS)
        logits = torch.einsum('bhd,blhd->bhl', q, k) * block.attn.scale
        attn = logits.softmax(dim=-1).mean(dim=1)
        x = block(tokens.x)
        expected = _direct_evit(x[0], attn[0], x.shape[1] // 2)
    torch.testing.assert_close(stages[1].x[0], expected)
