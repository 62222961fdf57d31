"""``token_pool`` of the families without a CLS token: the size-weighted
mean of the merged tokens (the default reading) or their plain mean,
against direct formulas; the unmerged model is the parent's mean either
way."""
import pytest
import torch
from mmengine.registry import init_default_scope
from tiny_backbones import BACKBONES, FRAMES, SIZE

import mmaction_sttm  # noqa: F401
from mmaction_sttm.registry import MODELS

STTM = dict(
    type='STTM',
    layers=(1, 2),
    stages=('spatial', 'spatiotemporal'),
    ratio=0.5)


def _build(**kwargs):
    init_default_scope('mmaction')
    torch.manual_seed(0)
    model = MODELS.build(dict(BACKBONES['videomae'], **kwargs))
    model.init_weights()
    return model.eval()


def test_plain_and_size_weighted_pooling_of_merged_tokens():
    sized = _build(merger=STTM)
    plain = _build(merger=STTM, token_pool='mean')
    plain.load_state_dict(sized.state_dict())
    x = torch.randn(2, 3, FRAMES, SIZE, SIZE)
    with torch.no_grad():
        seq, stages = sized.forward_tokens(x)
        sizes = stages[-1].sizes
        assert not torch.all(sizes == sizes[:, :1])  # sizes do differ
        weighted = (seq * sizes[..., None]).sum(1) / sizes.sum(1, True)
        torch.testing.assert_close(sized.pool(seq, stages[-1]), weighted)
        torch.testing.assert_close(
            plain.pool(seq, stages[-1]), seq.mean(dim=1))
        assert not torch.allclose(sized(x), plain(x))


def test_the_unmerged_model_pools_as_its_parent():
    x = torch.randn(2, 3, FRAMES, SIZE, SIZE)
    with torch.no_grad():
        a, b = _build(), _build(token_pool='mean')
        b.load_state_dict(a.state_dict())
        torch.testing.assert_close(a(x), b(x))


def test_a_wrong_token_pool_fails_at_build():
    with pytest.raises(ValueError, match="token_pool must be 'size' or"):
        _build(token_pool='max')
