"""Tiny versions of every merging backbone, shared by the tests: 3 blocks,
4 frames of 4 x 4 patches of 8 pixels, 32 channels, from the package's
family catalog (:mod:`mmaction_sttm.models.catalog`).

Importable from any test: pytest puts ``tests/`` (the folder of
``conftest.py``, which is in no package) on ``sys.path``.
"""
from mmaction_sttm.models.catalog import FAMILIES

DIMS, FRAMES, SIZE = 32, 4, 32

#: Family name -> tiny backbone config (no merger).
BACKBONES = {
    family.name: family.tiny(DIMS, FRAMES, SIZE)
    for family in FAMILIES
}
