"""mmaction-sttm: Spatial-temporal Token Merger (STTM) for MMAction2."""
from setuptools import find_packages, setup

# Ranges, not pins, so that the package joins an existing MMAction2
# environment without replacing its torch or mmaction2. Both ends of every
# range were installed and tested (docs/getting_started.md, "Versions"):
#   low:  torch 2.6.0 + torchvision 0.21.0, mmengine 0.10.4, timm 1.0.3,
#         mmcv 2.0.1 under the full build's name (constraints-low.txt)
#   high: torch 2.9.1 + torchvision 0.24.1, mmengine 0.10.7, timm 1.0.31,
#         mmcv-lite 2.0.1 (the lock, constraints.txt)
INSTALL_REQUIRES = [
    # engine/checkpoint_loading.py allow-lists MMEngine's checkpoint globals
    # as (object, name) pairs, which torch.serialization takes from 2.6 on
    # (2.4.1 and 2.5.1 were tried: checkpoint loading fails). Any build
    # works: CUDA, ROCm or CPU-only.
    'torch>=2.6.0,<2.10',
    'torchvision>=0.21.0,<0.25',
    # mmengine 0.10.x imports pkg_resources, which setuptools 82 removed.
    'setuptools<82',
    'mmengine>=0.10.4,<0.11',
    # mmaction2 1.2.0 on the registry does not import (its package lacks
    # mmaction/models/localizers/drn). 1.1.0 asserts mmcv < 2.1.0.
    'mmaction2>=1.1.0,<1.2',
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
MMCV_RANGE = '>=2.0.1,<2.1.0'

EXTRAS_REQUIRE = {
    'lite': [f'mmcv-lite{MMCV_RANGE}'],
    'mmcv': [f'mmcv{MMCV_RANGE}'],
    'tests': ['pytest>=8', 'hypothesis>=6'],
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
