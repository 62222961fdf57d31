"""mmaction-sttm: Spatial-temporal Token Merger (STTM) for MMAction2.

Importing the package registers its modules in MMAction2's registries (and
its ``'atomic_local'`` file backend in MMEngine's) and changes nothing else;
configs do it with ``custom_imports = dict(imports=['mmaction_sttm'])``.
Behaviour beyond that (safe checkpoint loading, crash-safe checkpoint
writes, epoch seeding) is switched on by hooks that a config names, as
``configs/_base_/default_runtime.py`` does.
"""
import importlib.util

# mmcv is an extra, not a requirement (see setup.py: full mmcv and mmcv-lite
# ship the same package); say how to get it before MMAction2's import fails.
if importlib.util.find_spec('mmcv') is None:
    raise ImportError(
        'mmaction-sttm needs mmcv >=2.0.1,<2.2.0 (below 2.1.0 with '
        'MMAction2 1.1), the full build or mmcv-lite; neither is installed. '
        "Run `pip install 'mmcv-lite>=2.0.1,<2.1.0'` for MMAction2 1.1 or "
        "`pip install 'mmcv-lite>=2.0.1,<2.2.0'` for 1.2: the recognizers "
        'use no compiled ops.')

from . import compat  # noqa: E402

# Before MMAction2's models are imported (by the subpackages), which warn.
compat.import_mmcv_quietly()

from . import datasets, engine, models  # noqa: E402,F401
from .models import apply_merger  # noqa: E402
from .registry import register_all_modules  # noqa: E402

__version__ = '0.1.0'

__all__ = ['apply_merger', 'register_all_modules', '__version__']
