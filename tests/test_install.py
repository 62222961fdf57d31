"""Installing the package leaves the user's torch, mmcv and MMAction2 alone.

``setup.py`` declares ranges so that ``pip install -e .`` joins an existing
MMAction2 environment. This asks pip, in the environment the suite runs in,
what ``pip install -e .`` would install (``--dry-run --report``, which
resolves against the installed packages exactly as a real install does) and
fails if torch, torchvision, mmcv / mmcv-lite, mmaction2, mmengine or numpy
would be installed, upgraded or downgraded. CI runs it at the low and the
high end of the ranges (``make test-low``, ``make test-high``) and on the
lock.
"""
import json
import subprocess
import sys
from importlib import metadata

import pytest

# The stack a user's MMAction2 environment already has and must keep
# (numpy too: torch < 2.3 does not work with numpy 2).
PROTECTED = ('torch', 'torchvision', 'mmcv', 'mmcv-lite', 'mmaction2',
             'mmengine', 'numpy')


def _canonical(name: str) -> str:
    return name.lower().replace('_', '-')


def _installed() -> dict:
    return {
        _canonical(dist.metadata['Name']): dist.version
        for dist in metadata.distributions()
    }


def changed_by_install(report: dict, protected=PROTECTED) -> dict:
    """``{name: version pip would install}`` for the protected packages.

    Args:
        report (dict): pip's installation report (``--report``).
        protected (Sequence[str]): Distribution names to watch.

    Returns:
        dict: The protected packages that the install would put in place.
    """
    watched = {_canonical(n) for n in protected}
    changed = {}
    for item in report.get('install', []):
        name = _canonical(item['metadata']['name'])
        if name in watched:
            changed[name] = item['metadata']['version']
    return changed


def test_changed_by_install_finds_a_replaced_torch():
    report = {
        'install': [
            {
                'metadata': {
                    'name': 'Torch',
                    'version': '2.9.1'
                }
            },
            {
                'metadata': {
                    'name': 'mmcv_lite',
                    'version': '2.1.0'
                }
            },
            {
                'metadata': {
                    'name': 'einops',
                    'version': '0.8.2'
                }
            },
        ]
    }
    assert changed_by_install(report) == {
        'torch': '2.9.1',
        'mmcv-lite': '2.1.0'
    }


def test_pip_install_keeps_torch_mmcv_mmaction2(repo_root, tmp_path):
    installed = _installed()
    if not any(n in installed for n in ('mmcv', 'mmcv-lite')):
        pytest.skip('no mmcv in this environment')
    report_path = tmp_path / 'report.json'
    # No extras: an MMAction2 environment brings its own mmcv (full or
    # lite), and the package requires neither by name. No build isolation:
    # setuptools is already here and nothing needs downloading to build.
    proc = subprocess.run([
        sys.executable, '-m', 'pip', 'install', '--dry-run', '--quiet',
        '--no-build-isolation', '--report',
        str(report_path), '-e', repo_root
    ],
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(report_path.read_text())
    changed = changed_by_install(report)
    before = {name: installed.get(name) for name in changed}
    assert not changed, (
        f'pip install -e . would replace {before} with {changed}')
