"""A FLOP count in a fresh process, at an input size that resamples the
position embedding: timm (imported for the resampling) must be imported
when the backbone is built, since importing it inside MMEngine's
``torch.jit`` trace fails (torchvision's ``_cuda_version`` op)."""
import subprocess
import sys

import pytest

SCRIPT = '''
import sys
from mmengine.registry import init_default_scope
init_default_scope('mmaction')
import mmaction_sttm  # noqa: F401
from mmaction_sttm.analysis import complexity
from mmaction_sttm.registry import MODELS
assert 'timm' not in sys.modules  # importing the package stays light
cfg = dict(type={family!r}, **{args})
model = MODELS.build(cfg)
print(complexity(model, (1, 3, 4, 48, 48))['flops'])
'''

FAMILIES = {
    'SpaceTimeViT':
    dict(
        img_size=32,
        patch_size=8,
        num_frames=4,
        embed_dims=32,
        depth=2,
        num_heads=2),
    'MergingTimeSformer':
    dict(
        num_frames=4,
        img_size=32,
        patch_size=8,
        embed_dims=32,
        num_heads=2,
        num_transformer_layers=2),
    'MergingVisionTransformer':
    dict(
        img_size=32,
        patch_size=8,
        embed_dims=32,
        depth=2,
        num_heads=2,
        num_frames=4,
        tubelet_size=2),
}


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_flops_at_another_size_in_a_fresh_process(family):
    script = SCRIPT.format(family=family, args=FAMILIES[family])
    proc = subprocess.run([sys.executable, '-c', script],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.strip().splitlines()[-1]) > 0
