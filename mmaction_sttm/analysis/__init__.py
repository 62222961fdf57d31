from .complexity import complexity, sdpa_flop_jit
from .memory import peak_memory_mib
from .view import pipeline_view

__all__ = ['complexity', 'peak_memory_mib', 'pipeline_view', 'sdpa_flop_jit']
