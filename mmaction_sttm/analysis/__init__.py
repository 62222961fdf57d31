from .complexity import complexity, complexity_of_views, sdpa_flop_jit
from .cost_points import CostCounter, CostPoint, ratio_for_cost
from .memory import peak_memory_mib
from .view import pipeline_view

__all__ = [
    'CostCounter', 'CostPoint', 'ratio_for_cost', 'complexity',
    'complexity_of_views', 'peak_memory_mib', 'pipeline_view', 'sdpa_flop_jit'
]
