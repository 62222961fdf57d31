"""mmaction-sttm: Spatial-temporal Token Merger (STTM) for MMAction2."""
from setuptools import find_packages, setup

# Every pin below was checked on the project's CPU machines (2026-11); the
# reason stands next to it.
INSTALL_REQUIRES = [
    # The registry's CUDA builds: they also run on CPU, and torchvision (which
    # timm and mmpretrain import) has no CPU-only build matching a CPU torch.
    'torch==2.9.1',
    'torchvision==0.24.1',
    # mmengine 0.10.7 imports pkg_resources, which setuptools 82 removed.
    'setuptools<82',
    'mmengine==0.10.7',
    # mmaction2 1.1.0 asserts mmcv < 2.1.0; the pure-Python build is enough
    # for recognizers (no compiled ops are used).
    'mmcv-lite==2.0.1',
    # mmaction2 1.2.0 on the registry does not import (its package lacks
    # mmaction/models/localizers/drn).
    'mmaction2==1.1.0',
    'mmpretrain==1.2.0',
    'timm>=1.0,<1.1',
    'decord==0.6.0',
    'einops',
    'numpy',
    'opencv-python-headless',
    'matplotlib',
    'tqdm',
]

EXTRAS_REQUIRE = {
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
