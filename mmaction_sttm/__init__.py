"""mmaction-sttm: Spatial-temporal Token Merger (STTM) for MMAction2.

Importing the package registers its modules in MMAction2's registries; configs
do it with ``custom_imports = dict(imports=['mmaction_sttm'])``.
"""
import importlib.util

# mmcv is an extra, not a requirement (see setup.py: full mmcv and mmcv-lite
# ship the same package); say how to get it before MMAction2's import fails.
if importlib.util.find_spec('mmcv') is None:
    raise ImportError(
        'mmaction-sttm needs mmcv 2.0.x, the full build or mmcv-lite; '
        "neither is installed. Run `pip install 'mmcv-lite>=2.0.1,<2.1.0'` "
        "(or `pip install -e '.[lite]'`): the recognizers use no compiled "
        'ops.')

from . import compat  # noqa: E402

# Before MMAction2 is imported (by the subpackages), which warns.
compat.filter_mmcv_lite_warning()

from . import datasets, engine, models  # noqa: E402,F401

__version__ = '0.1.0'
