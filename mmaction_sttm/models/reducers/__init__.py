"""Content-adaptive token reducers that run before the first block."""
from .rlt import RLT, build_reducer

__all__ = ['RLT', 'build_reducer']
