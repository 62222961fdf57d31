from .complexity import complexity, complexity_of_views, sdpa_flop_jit
from .memory import peak_memory_mib
from .view import pipeline_view

__all__ = [
    'complexity', 'complexity_of_views', 'peak_memory_mib', 'pipeline_view',
    'sdpa_flop_jit'
]
