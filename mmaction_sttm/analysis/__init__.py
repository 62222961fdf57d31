from .complexity import complexity, sdpa_flop_jit
from .memory import peak_memory_mib

__all__ = ['complexity', 'peak_memory_mib', 'sdpa_flop_jit']
