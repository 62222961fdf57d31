"""Merging backbones compile with ``torch.compile``: one graph per forward,
no graph break (inside a merge or anywhere else), inference and training.

Dynamo's ``explain`` traces without compiling (seconds per tiny model).
Inductor compiles the STTM merger alone (its C++ code generation takes tens
of seconds even there); a whole tiny backbone goes through AOT autograd
(forward and backward graphs, ``aot_eager``) without code generation. Both
equal eager.
"""
import pytest
import torch
from mmaction.utils import register_all_modules
from tiny_backbones import BACKBONES, DIMS, FRAMES, SIZE

from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.models.mergers.sttm import STTM
from mmaction_sttm.registry import MODELS

register_all_modules()

# One graph per forward needs torch.library.custom_op (torch >= 2.4): before
# it, the greedy selection is a graph break by design (and dynamo of torch
# 2.1 breaks on more: the Tokens dataclass).
pytestmark = pytest.mark.skipif(
    not hasattr(torch.library, 'custom_op'),
    reason=f'torch {torch.__version__} < 2.4: no torch.library.custom_op')

MERGER = dict(type='STTM', layers=(1, 2), fuse_init='orthogonal')


def _backbone(name: str, train: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = MODELS.build(dict(BACKBONES[name], merger=MERGER))
    model.init_weights()
    return model.train(train)


def _clips() -> torch.Tensor:
    return torch.randn(
        2, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


def _explain(fn, *args):
    torch._dynamo.reset()
    return torch._dynamo.explain(fn)(*args)


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_inference_is_one_graph(name):
    model = _backbone(name, train=False)
    with torch.no_grad():
        report = _explain(model, _clips())
    reasons = [b.reason for b in report.break_reasons]
    assert report.graph_break_count == 0, reasons
    assert report.graph_count == 1


@pytest.mark.parametrize('merger', ['ToMe', 'EViT', 'PiToMe', 'VidTLDR'])
def test_peer_mergers_are_one_graph(merger):
    """The peers' merges (sorts, gathers, the sharpness that vid-TLDR
    asks the backbone for) trace without a break as well."""
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            BACKBONES['vit'],
            merger=dict(type=merger, layers=(1, 2), ratio=0.3))).eval()
    with torch.no_grad():
        report = _explain(model, _clips())
    assert report.graph_break_count == 0, [
        b.reason for b in report.break_reasons
    ]
    assert report.graph_count == 1


@pytest.mark.parametrize('name', ['timesformer', 'mmpretrain'])
def test_training_forward_is_one_graph(name):
    # These two build mmcv DropPath with numpy rates (np.linspace), whose
    # `drop_prob == 0.` dynamo cannot trace: two breaks per block until the
    # rates are floats (plain_drop_probs).
    model = _backbone(name, train=True)
    report = _explain(lambda x: model(x).sum(), _clips())
    assert report.graph_break_count == 0, [
        b.reason for b in report.break_reasons
    ]


def test_sttm_merge_compiles_fullgraph_and_matches_eager():
    torch.manual_seed(0)
    merger = STTM(DIMS, ratio=0.5, fuse_init='orthogonal').eval()
    x = torch.randn(3, 24, DIMS)
    tokens = Tokens(x, torch.randn(1, 24, DIMS), torch.rand(3, 24) + 0.5)
    attn = torch.rand(3, 24).softmax(-1)

    def merge(x, pos, sizes, attn):
        out = merger(Tokens(x, pos, sizes), cls_attn=attn)
        return out.x, out.pos, out.sizes

    torch._dynamo.reset()
    compiled = torch.compile(merge, fullgraph=True, backend='inductor')
    with torch.no_grad():
        ref = merge(tokens.x, tokens.pos, tokens.sizes, attn)
        got = compiled(tokens.x, tokens.pos, tokens.sizes, attn)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_compiled_backbone_trains_and_matches_eager():
    """A whole tiny backbone traced forward and backward as one graph."""
    model = _backbone('vit', train=True)
    clips = _clips()
    model(clips).sum().backward()
    ref = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend='aot_eager')
    out = compiled(clips)
    out.sum().backward()
    got = [p.grad for p in model.parameters() if p.grad is not None]
    with torch.no_grad():
        torch.testing.assert_close(out, model(clips), atol=1e-4, rtol=1e-4)
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)
