"""mmaction-sttm: Spatial-temporal Token Merger (STTM) for MMAction2.

Importing the package registers its modules in MMAction2's registries; configs
do it with ``custom_imports = dict(imports=['mmaction_sttm'])``.
"""
from . import compat

# Before MMAction2 is imported (by the subpackages), which warns.
compat.filter_mmcv_lite_warning()

from . import datasets, engine, models  # noqa: E402,F401

__version__ = '0.1.0'
