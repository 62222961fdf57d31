"""A merger whose init is not neutral (STTM's orthogonal fusion) says, in
one warning line, that it runs untrained in a trained model, and what to
insert instead; the neutral init (identity) and a fine-tuning run say
nothing. ``apply_merger`` inserts STTM with the identity by default."""
import logging

import pytest
import torch
from mmaction.utils import register_all_modules
from mmengine.logging import MMLogger
from tiny_backbones import DIMS, FRAMES, SIZE

import mmaction_sttm  # noqa: F401
from mmaction_sttm import apply_merger
from mmaction_sttm.models.catalog import FAMILIES
from mmaction_sttm.registry import MODELS

register_all_modules()

VIDEOMAE = next(f for f in FAMILIES if f.name == 'videomae')


def _merger(fuse_init=None):
    merger = dict(type='STTM', layers=(1, ), ratio=0.5)
    if fuse_init is not None:
        merger['fuse_init'] = fuse_init
    return merger


def _clip() -> torch.Tensor:
    return torch.randn(
        2, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


def _unmerged() -> torch.nn.Module:
    cfg = dict(VIDEOMAE.tiny(DIMS, FRAMES, SIZE), type=VIDEOMAE.replaces)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


class _Warnings(logging.Handler):
    """The WARNING lines of MMEngine's current logger."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def warnings_seen():
    logger = MMLogger.get_current_instance()
    handler = _Warnings()
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def _untrained_lines(lines):
    return [line for line in lines if 'runs untrained' in line]


def test_apply_merger_orthogonal_warns_once(warnings_seen):
    merged = apply_merger(_unmerged(), _merger('orthogonal'))
    with torch.no_grad():
        merged(_clip())
        merged(_clip())
    (line, ) = _untrained_lines(warnings_seen)
    assert '\n' not in line
    assert "fuse_init='orthogonal'" in line and 'needs fine-tuning' in line
    assert "fuse_init='identity'" in line


def test_apply_merger_default_is_identity_and_silent(warnings_seen):
    merged = apply_merger(_unmerged(), _merger())
    (sttm, ) = [
        m for m in merged.merge_schedule.modules()
        if type(m).__name__ == 'STTM'
    ]
    assert sttm.fuse_init == 'identity' and sttm.neutral_init
    # The identity starts from Y = A: the fusion layer is [I, 0].
    eye = torch.eye(DIMS)
    torch.testing.assert_close(sttm.fuse.weight[:, :DIMS], eye)
    assert not sttm.fuse.weight[:, DIMS:].any()
    with torch.no_grad():
        merged(_clip())
    assert not _untrained_lines(warnings_seen)


def _config_path(fuse_init):
    """A merging config loading an unmerged checkpoint, as ``load_from``."""
    model = MODELS.build(
        dict(VIDEOMAE.tiny(DIMS, FRAMES, SIZE), merger=_merger(fuse_init)))
    model.init_weights()
    model.load_state_dict(_unmerged().state_dict(), strict=False)
    return model


def test_config_path_untrained_in_inference_warns(warnings_seen):
    model = _config_path('orthogonal').eval()
    with torch.no_grad():
        model(_clip())
    assert len(_untrained_lines(warnings_seen)) == 1


def test_fine_tuning_clears_it(warnings_seen):
    model = _config_path('orthogonal').train()
    model(_clip()).sum().backward()
    model.eval()
    with torch.no_grad():
        model(_clip())
    assert not _untrained_lines(warnings_seen)


def test_merger_weights_in_the_checkpoint_clear_it(warnings_seen):
    trained = _config_path('orthogonal')
    model = _config_path('orthogonal')
    model.load_state_dict(trained.state_dict())
    with torch.no_grad():
        model.eval()(_clip())
    assert not _untrained_lines(warnings_seen)
