"""``import mmaction_sttm`` registers modules and changes nothing else.

Each check runs in a fresh interpreter: the test process has long imported
the package (and run hooks that register checkpoint loaders).
"""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Prints, as json, every module the package imports besides its own, in the
# order they were first imported.
_DEPENDENCIES = r'''
import json, sys
before = set(sys.modules)
import mmaction_sttm  # noqa: F401
print(json.dumps([name for name in sys.modules if name not in before
                  and name.split('.')[0] != 'mmaction_sttm']))
'''

# Imports those modules first, so that what a third-party module does when
# it is first imported (torch and numpy add warning filters, registries
# fill) happens before the snapshot. Then every difference that importing
# mmaction_sttm makes is its own.
_SNAPSHOT = r'''
import importlib, inspect, json, sys, warnings
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception:  # private or failing modules (mmcv-lite's ops)
        pass

import torch
from mmengine.registry import Registry
from mmengine.runner.checkpoint import CheckpointLoader


def snapshot():
    # The objects themselves, compared by identity (an id() could be reused
    # by a new object once the old one is freed).
    state = {}
    for name, module in list(sys.modules.items()):
        if module is None or name.split('.')[0] == 'mmaction_sttm':
            continue
        # Module functions and classes (mmengine.runner.checkpoint's
        # load_from_http, torch's safe-globals set, ...).
        for attr, value in list(vars(module).items()):
            state[f'{name}.{attr}'] = value
            if inspect.isclass(value) and value.__module__ == name:
                for cls_attr, member in list(vars(value).items()):
                    state[f'{name}.{attr}.{cls_attr}'] = member
            # Registries (models, hooks, file backends): a name added is
            # registration, a name taken over is not.
            if isinstance(value, Registry):
                for key, member in value.module_dict.items():
                    state[f'{name}.{attr}[{key!r}]'] = member
    for key, loader in CheckpointLoader._schemes.items():
        state[f'CheckpointLoader._schemes[{key!r}]'] = loader
    from mmengine.fileio.backends import registry_utils
    for key, backend in registry_utils.backends.items():
        state[f'file backend {key!r}'] = backend
    state['warnings.filters'] = repr(warnings.filters)
    # A torch without the allow-list has none to read (nor to change).
    safe_globals = getattr(torch.serialization, 'get_safe_globals',
                           lambda: [])
    state['torch safe globals'] = repr(sorted(map(repr, safe_globals())))
    return state


# A first pass resolves lazy module attributes (importlib_metadata's
# lazy_importer proxies turn into the real objects when inspected); only
# the second is the state before the import.
snapshot()
before = snapshot()
import mmaction_sttm  # noqa: F401
after = snapshot()
print(json.dumps(sorted(
    key for key, value in before.items()
    if not (after.get(key) is value or isinstance(value, str)
            and after.get(key) == value))))
'''


def _python(script: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run([sys.executable, '-c', script, *args],
                            capture_output=True,
                            text=True,
                            env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_import_changes_nothing_of_anyone_else():
    """No module function, class attribute, registry entry, checkpoint
    loader scheme, file backend, warning filter or torch safe global that
    existed before ``import mmaction_sttm`` is different after it."""
    dependencies = _python(_DEPENDENCIES)
    assert 'mmengine.runner.checkpoint' in json.loads(dependencies)
    changed = json.loads(_python(_SNAPSHOT, dependencies))
    assert changed == []


def test_register_all_modules():
    script = r'''
import sys
from mmengine.registry import DefaultScope
import mmaction_sttm
mmaction_sttm.register_all_modules()
from mmaction.registry import HOOKS, MODELS
print(DefaultScope.get_current_instance().scope_name,
      'mmaction.models.recognizers' in sys.modules,
      MODELS.get('SpaceTimeViT').__name__,
      HOOKS.get('SafeCheckpointLoadingHook').__name__)
'''
    assert _python(script).split() == [
        'mmaction', 'True', 'SpaceTimeViT', 'SafeCheckpointLoadingHook'
    ]
