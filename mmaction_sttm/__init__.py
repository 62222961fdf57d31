"""mmaction-sttm: Spatial-temporal Token Merger (STTM) for MMAction2.

Importing the package registers its modules in MMAction2's registries; configs
do it with ``custom_imports = dict(imports=['mmaction_sttm'])``.
"""
from . import compat  # noqa: F401  (torch / mmengine fixes, applied once)
from . import datasets, engine, models  # noqa: F401

__version__ = '0.1.0'
