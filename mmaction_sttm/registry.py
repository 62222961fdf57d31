"""Registries: the project registers into MMAction2's, so configs that load
it with ``custom_imports`` build its modules by ``type`` name."""
from mmaction.registry import DATASETS, METRICS, MODELS, TRANSFORMS

__all__ = [
    'DATASETS', 'METRICS', 'MODELS', 'TRANSFORMS', 'register_all_modules'
]


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register MMAction2's modules and this package's, for code that builds
    modules without a config's ``custom_imports``.

    MMAction2's :func:`mmaction.utils.register_all_modules` with this
    package's modules on top (importing :mod:`mmaction_sttm` registers
    them; this function is what a script calls to say so).

    Args:
        init_default_scope (bool): Whether to make ``'mmaction'`` the
            default scope, as MMAction2's function does, so that registries
            build from MMAction2's registry node. Defaults to True.
    """
    from mmaction.utils import register_all_modules as register_mmaction

    import mmaction_sttm  # noqa: F401  (registers this package's modules)
    register_mmaction(init_default_scope=init_default_scope)
