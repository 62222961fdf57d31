"""Every family's transformer blocks become MergingBlocks: still instances
of their own class, with its parameters and state-dict keys; called without
a step they run their own forward; a whole model pickles and loads back."""
import io

import pytest
import torch
from mmengine.registry import init_default_scope
from tiny_backbones import BACKBONES, FRAMES, SIZE

import mmaction_sttm  # noqa: F401
from mmaction_sttm.models.backbones.base import MergingBlock, is_merging_block
from mmaction_sttm.registry import MODELS

MERGER = dict(type='ToMe', layers=(1, 2), ratio=0.3)


def _model(name):
    init_default_scope('mmaction')
    torch.manual_seed(0)
    model = MODELS.build(dict(BACKBONES[name], merger=MERGER))
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_blocks_keep_their_class_and_run_their_own_forward(name):
    model = _model(name)
    blocks = model.block_modules()
    assert len(blocks) == model.num_blocks
    for block in blocks:
        own = type(block).__bases__[1]
        assert is_merging_block(block) and isinstance(block, own)
        assert type(block).__name__ == own.__name__
        assert type(block).__mro__[1] is MergingBlock
    # Without a step, the block's own class's forward (checked on one
    # block of a family whose forward takes the sequence alone).
    if name in ('vit', 'videomae', 'timm'):
        block = blocks[0]
        x = torch.randn(2, 5, block.norm1.normalized_shape[0])
        own_forward = type(block).__bases__[1].forward
        torch.testing.assert_close(block(x), own_forward(block, x))


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_whole_model_pickles(name):
    model = _model(name)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False).eval()
    assert type(loaded.block_modules()[0]) is type(model.block_modules()[0])
    x = torch.randn(
        2, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_state_dict_keys_are_the_parents():
    """MMAction2's VideoMAE ViT checkpoints load as before: the same keys
    (the mergers' own parameters apart)."""
    model = _model('videomae')
    parent = MODELS.build(
        dict(BACKBONES['videomae'], type='VisionTransformer'))
    ours = {
        k
        for k in model.state_dict() if not k.startswith('merge_schedule.')
    }
    assert ours == set(parent.state_dict())
