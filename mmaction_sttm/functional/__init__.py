"""Framework-free token-merging algorithms (functions over tensors)."""
from .sttm import (correspondence, most_orthogonal_select, num_candidates,
                   num_meta_tokens, select_meta_tokens)
from .tokens import Tokens

__all__ = [
    'Tokens', 'correspondence', 'most_orthogonal_select', 'num_candidates',
    'num_meta_tokens', 'select_meta_tokens'
]
