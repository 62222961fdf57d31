"""Activation checkpointing (``with_cp``) in every catalog family, with a
merger between the blocks: the same outputs and the same gradients as
without it, dropout and drop path replayed, and the merge run once."""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from tiny_backbones import BACKBONES, FRAMES, SIZE

import mmaction_sttm  # noqa: F401
from mmaction_sttm.registry import MODELS

MERGERS = {
    'sttm':
    dict(
        type='STTM', layers=(1, 2), stages=('spatiotemporal', ) * 2,
        ratio=0.5),
    'tome':
    dict(type='ToMe', layers=(1, 2), ratio=0.3),
    'random-drop':
    dict(type='RandomDrop', layers=(1, ), ratio=0.5),
}


def _pair(name, merger):
    init_default_scope('mmaction')
    cfg = dict(BACKBONES[name], merger=copy.deepcopy(merger))
    torch.manual_seed(0)
    plain = MODELS.build(cfg)
    plain.init_weights()
    checkpointed = MODELS.build(dict(cfg, with_cp=True))
    checkpointed.load_state_dict(plain.state_dict())
    assert checkpointed.with_cp and not plain.with_cp
    return plain.train(), checkpointed.train()


def _grads(model, x, seed):
    model.zero_grad()
    torch.manual_seed(seed)
    out = model(x)
    (out.float()**2).mean().backward()
    return out.detach(), {
        k: p.grad.clone()
        for k, p in model.named_parameters() if p.grad is not None
    }


@pytest.mark.parametrize('merger', sorted(MERGERS))
@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_checkpointing_keeps_outputs_and_gradients(name, merger):
    plain, checkpointed = _pair(name, MERGERS[merger])
    x = torch.randn(
        2, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    out_a, grads_a = _grads(plain, x, seed=3)
    out_b, grads_b = _grads(checkpointed, x, seed=3)
    torch.testing.assert_close(out_b, out_a, atol=1e-6, rtol=1e-5)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for key in grads_a:
        torch.testing.assert_close(
            grads_b[key], grads_a[key], atol=1e-6, rtol=1e-5, msg=key)


def test_checkpointing_recomputes_the_blocks_and_replays_dropout():
    """The blocks run twice (forward, then recomputed in backward), the
    merger once; with drop path on, the gradients still match."""
    cfg = dict(
        BACKBONES['vit'],
        drop_path_rate=0.5,
        drop_rate=0.2,
        merger=MERGERS['sttm'])
    torch.manual_seed(0)
    plain = MODELS.build(cfg)
    plain.init_weights()
    checkpointed = MODELS.build(dict(cfg, with_cp=True))
    checkpointed.load_state_dict(plain.state_dict())
    calls = {'block': 0, 'merge': 0}
    block = checkpointed.block

    def counted_block(*args, **kwargs):
        calls['block'] += 1
        return block(*args, **kwargs)

    checkpointed.block = counted_block
    merger = checkpointed.merge_schedule.mergers['1']
    merger.register_forward_hook(
        lambda *_: calls.__setitem__('merge', calls['merge'] + 1))
    x = torch.randn(2, 3, FRAMES, SIZE, SIZE)
    _, grads_a = _grads(plain.train(), x, seed=5)
    _, grads_b = _grads(checkpointed.train(), x, seed=5)
    assert calls == {'block': 2 * checkpointed.num_blocks, 'merge': 1}
    for key in grads_a:
        torch.testing.assert_close(grads_b[key], grads_a[key], msg=key)
    # Not in evaluation: no recomputation, nothing kept for backward.
    calls.update(block=0, merge=0)
    with torch.no_grad():
        checkpointed.eval()(x)
    assert calls['block'] == checkpointed.num_blocks
