"""The repository's command-line tools as modules, for the tests that call
their functions in the test process. The tools are scripts under ``tools/``,
not modules of the package, so they are loaded from their files."""
import importlib.util
from types import ModuleType


def load_tool(name: str, path: str) -> ModuleType:
    """Load a tool's file as a new module.

    Args:
        name (str): The module's name (not added to ``sys.modules``).
        path (str): The tool's file.

    Returns:
        ModuleType: The module, its top level run.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
