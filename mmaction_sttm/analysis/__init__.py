from .complexity import complexity, sdpa_flop_jit

__all__ = ['complexity', 'sdpa_flop_jit']
