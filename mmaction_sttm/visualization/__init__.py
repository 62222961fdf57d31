"""Pictures of what a merging backbone does to a clip (issue 6).

- :func:`trace_merging` (:mod:`.merge_maps`): which token every input patch
  belongs to after each merge;
- :func:`attention_rollout` (:mod:`.rollout`): attention rollout carried
  through the merges to the input patches;
- :func:`load_clip` (:mod:`.video`): a video file through the config's own
  pipeline and data preprocessor;
- :func:`draw_merge_sheet`, :func:`draw_attention_sheet`,
  :func:`save_animation` (:mod:`.drawing`): the pictures.

The command-line tool ``tools/visualize_merging.py`` strings them together for
a config, a checkpoint and a video file.
"""
from .drawing import (draw_attention_sheet, draw_merge_sheet, save_animation,
                      token_colours)
from .merge_maps import MergeTrace, StageMap, trace_merging
from .rollout import attention_rollout
from .video import load_clip

__all__ = [
    'MergeTrace', 'StageMap', 'attention_rollout', 'draw_attention_sheet',
    'draw_merge_sheet', 'load_clip', 'save_animation', 'token_colours',
    'trace_merging'
]
