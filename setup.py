"""mmaction-sttm: Spatial-temporal Token Merger (STTM) for MMAction2."""
from setuptools import find_packages, setup

# Ranges, not pins, so that the package joins an existing MMAction2
# environment without replacing its torch, mmcv or mmaction2. Both ends of
# every range were installed and tested (docs/getting_started.md, "Versions";
# CI runs `make test-low` and `make test-high` on the two locks):
#   low:  torch 2.1.2 + torchvision 0.16.2, numpy 1.26.4, mmengine 0.10.4,
#         timm 1.0.3, mmaction2 1.1.0, mmcv-lite 2.0.1 (constraints-low.txt)
#   lock: torch 2.9.1 + torchvision 0.24.1 (constraints.txt)
#   high: torch 2.14.1 + torchvision 0.29.1, numpy 2.4.6, mmengine 0.10.7,
#         timm 1.0.31 (constraints-high.txt); torch 2.15.0 tested by hand
#   mmaction2 1.2.0 (from its source) with mmcv-lite 2.1.0 on torch 2.1.2
INSTALL_REQUIRES = [
    # 2.1 is the torch of MMAction2's install guide. Features of a newer
    # torch turn themselves off below it, each with a one-line warning:
    # safe checkpoint loading (2.6: add_safe_globals with (object, name)
    # pairs), the greedy selection as one torch.compile node (2.4:
    # torch.library.custom_op), fused AdamW on CPU (2.4). torch < 2.3 needs
    # numpy < 2 (its wheels are built against numpy 1). Any build works:
    # CUDA, ROCm or CPU-only.
    'torch>=2.1.0,<2.16',
    'torchvision>=0.16.0,<0.30',
    # mmengine 0.10.x imports pkg_resources, which setuptools 82 removed.
    'setuptools<82',
    'mmengine>=0.10.4,<0.11',
    # 1.1 and 1.2. PyPI's mmaction2 1.2.0 wheel does not import (it lacks
    # mmaction/models/localizers/drn); 1.2.0 installed from its source does.
    # 1.1.0 asserts mmcv < 2.1.0, 1.2.0 mmcv < 2.2.0.
    'mmaction2>=1.1.0,<1.3',
    'mmpretrain>=1.2.0,<1.3',
    'timm>=1.0.3,<1.1',
    'decord>=0.6.0',
    # PyAV: the second decoder of the datasets' fallback chain (decord ->
    # PyAV -> OpenCV, docs/reliability.md); the zoo configs name it.
    # Tested with 18.1.0.
    'av>=18.1.0',
    'einops',
    'numpy',
    'opencv-python-headless',
    'matplotlib',
    'tqdm',
]

# mmcv is not in INSTALL_REQUIRES on purpose: the full mmcv and mmcv-lite
# install the same `mmcv` package under two distribution names, and pip
# cannot express "either". Requiring one would make pip install it over the
# other. An environment that has either keeps it; a new one picks an extra
# (`pip install -e .[lite]` is enough: recognizers use no compiled ops).
# `import mmaction_sttm` says what to do when neither is installed.
# mmcv 2.0 goes with MMAction2 1.1 (which refuses 2.1), 2.1 with 1.2.
MMCV_RANGE = '>=2.0.1,<2.2.0'

EXTRAS_REQUIRE = {
    'lite': [f'mmcv-lite{MMCV_RANGE}'],
    'mmcv': [f'mmcv{MMCV_RANGE}'],
    # The repository's study tools (statistics in
    # tools/analysis_tools/sttm_study/) and their tests; the package itself
    # needs no scipy.
    'study': ['scipy'],
    'tests': ['pytest>=8', 'pytest-xdist>=3', 'hypothesis>=6', 'scipy'],
    # `make lint`: MMAction2's linters, with its settings in setup.cfg.
    'lint': ['flake8>=7', 'isort>=5', 'yapf>=0.40'],
}

setup(
    name='mmaction-sttm',
    version='0.1.0',
    description='Spatial-temporal Token Merger (STTM) for video transformers '
    'in MMAction2',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmaction_sttm', 'mmaction_sttm.*']),
    python_requires='>=3.10',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    license='Apache-2.0',
)
