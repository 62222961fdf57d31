"""Convert ImageNet ViT and VideoMAE checkpoints into the video backbones'
layouts.

The paper initialises every backbone with ImageNet-1K weights (sec. 4.2).
Those come in three layouts, and the video backbones want three others; all
conversion goes through one neutral layout (timm's parameter names), so each
source needs one reader and each target one writer:

======================  =====================================================
source (``src_format``)  what it is
======================  =====================================================
``timm``                 timm ``VisionTransformer`` / DeiT ``state_dict``
                         (``patch_embed.proj``, ``blocks.i.attn.qkv``, ...),
                         bare or under ``'model'`` / ``'state_dict'``.
``mmpretrain``           mmpretrain ``VisionTransformer`` (``backbone.layers.i
                         .ln1``, ``ffn.layers.0.0``, ``backbone.ln1``, ...).
``mmaction-timesformer`` MMAction2's ``TimeSformer``: the 2D file its recipes
                         pass as ``pretrained`` (``norms.0``, ``attentions.0``)
                         or a divided space-time checkpoint (``attentions.1``
                         spatial, ``attentions.0`` temporal + ``temporal_fc``).
``mmaction-videomae``    MMAction2's released VideoMAE recognizers
                         (``backbone.patch_embed.projection``,
                         ``backbone.blocks.i.mlp.layers.0.0``,
                         ``cls_head.fc_cls``).
``videomae``             VideoMAE's own ``VisionTransformer``
                         (MCG-NJU/VideoMAE and OpenGVLab/VideoMAEv2
                         ``modeling_finetune.py``: ``patch_embed.proj``,
                         ``blocks.i.attn.q_bias`` / ``v_bias``,
                         ``blocks.i.mlp.fc1``, ``fc_norm``, ``head``), bare or
                         under ``'model'`` / ``'module'``, and its
                         pre-training checkpoints (``encoder.`` beside
                         ``decoder.``).
======================  =====================================================

The two VideoMAE sources are video ViTs already (tubelets, no CLS token):
they convert only to ``videomae-vit``, directly, not through the neutral
image layout below, and every tensor maps exactly (see
:func:`convert_videomae_state_dict`).

======================  =====================================================
target (``dst``)         loads into
======================  =====================================================
``spacetime-vit``        :class:`~mmaction_sttm.models.SpaceTimeViT` (the
                         paper's ViT), timm names.
``timesformer``          MMAction2's ``TimeSformer`` and
                         :class:`~mmaction_sttm.models.MergingTimeSformer`,
                         full divided space-time layout.
``videomae-vit``         MMAction2's ``VisionTransformer`` and
                         :class:`~mmaction_sttm.models.MergingVisionTransformer`.
======================  =====================================================

What maps exactly and what does not:

* Image weights carry no temporal information. ``time_embed`` is written only
  when the source has one (an MMAction2 TimeSformer); otherwise the backbone
  keeps its zero initialisation, under which a static clip gives the image
  features.
* ``timesformer``: the temporal attention of each block is initialised as
  MMAction2's ``TimeSformer.init_weights`` does it, as a copy of the spatial
  attention and its norm, and ``temporal_fc`` as zeros
  (``DividedTemporalAttentionWithNorm.init_weights``), so the temporal branch
  adds nothing until it is trained.
* ``videomae-vit`` (tubelet ``Conv3d``, no CLS token, q/v biases only, mean
  pooling): the 2D patch kernel is inflated over the tubelet and divided by
  its length, so a static tubelet gives the 2D response; the k part of the qkv
  bias is dropped, which is exact (it adds ``q . b_k`` to every logit of a
  query alike, and softmax ignores that); the final ``norm`` becomes
  ``fc_norm`` (on the mean token); the spatial position embedding is tiled
  over the tubelet slices (set ``use_learnable_pos_emb=True``, or ask for
  ``videomae_pos_embed='sincos'`` to keep VideoMAE's fixed table). The CLS
  token and its position do not map: without them the network computes a
  different function, so the result is an initialisation, not an equivalent.
* Classification heads (``head``, ``pre_logits``, ``head_dist``) are dropped.

Unsupported sources (LayerScale, pre-norm CLIP-style ViTs, average-pooling
ViTs, register tokens, q/k norms) raise ``ValueError`` naming the keys,
rather than converting into something that silently computes another
function.
"""
import os
import os.path as osp
import re
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from mmaction_sttm.engine.checkpoint_loading import allow_listed
from mmaction_sttm.models.backbones.utils import interpolate_time_embed

__all__ = [
    'SRC_FORMATS', 'VIDEO_SRC_FORMATS', 'DST_FORMATS', 'VIDEOMAE_POS_EMBEDS',
    'load_state_dict', 'detect_layout', 'to_neutral', 'from_neutral',
    'convert_videomae_state_dict', 'convert_state_dict', 'convert_checkpoint'
]

StateDict = Dict[str, Tensor]

# Video ViTs in VideoMAE's layout: converted to 'videomae-vit' only.
VIDEO_SRC_FORMATS = ('mmaction-videomae', 'videomae')
SRC_FORMATS = ('timm', 'mmpretrain', 'mmaction-timesformer') + \
    VIDEO_SRC_FORMATS
DST_FORMATS = ('spacetime-vit', 'videomae-vit', 'timesformer')
VIDEOMAE_POS_EMBEDS = ('learned', 'sincos')

# Parameters of one block in the neutral (timm) layout, after 'blocks.i.'.
_BLOCK_KEYS = ('norm1', 'attn.qkv', 'attn.proj', 'norm2', 'mlp.fc1', 'mlp.fc2')
# MMAction2's TimeSformer against the neutral layout, one table read both
# ways: (neutral key part, TimeSformer key part), each followed by 'weight'
# or 'bias' (TimeSformer's packed attention says 'in_proj_weight').
# A divided space-time block: the spatial attention (with its own norm) at
# attentions.1, the FFN norm inside the FFN ...
_TIMESFORMER_SPATIAL = (
    ('norm1.', 'attentions.1.norm.'),
    ('attn.qkv.', 'attentions.1.attn.in_proj_'),
    ('attn.proj.', 'attentions.1.attn.out_proj.'),
    ('norm2.', 'ffns.0.norm.'),
    ('mlp.fc1.', 'ffns.0.layers.0.0.'),
    ('mlp.fc2.', 'ffns.0.layers.1.'),
)
# ... and the temporal attention at attentions.0 (optional when reading).
_TIMESFORMER_TEMPORAL = (
    ('temporal_norm.', 'attentions.0.norm.'),
    ('temporal_attn.qkv.', 'attentions.0.attn.in_proj_'),
    ('temporal_attn.proj.', 'attentions.0.attn.out_proj.'),
    ('temporal_fc.', 'attentions.0.temporal_fc.'),
)
# A 2D or joint block (MMAction2's pretrained file): attentions.0 + norms;
# read only.
_TIMESFORMER_JOINT = (
    ('norm1.', 'norms.0.'),
    ('attn.qkv.', 'attentions.0.attn.in_proj_'),
    ('attn.proj.', 'attentions.0.attn.out_proj.'),
    ('norm2.', 'norms.1.'),
    ('mlp.fc1.', 'ffns.0.layers.0.0.'),
    ('mlp.fc2.', 'ffns.0.layers.1.'),
)
# Outside the blocks.
_TIMESFORMER_STEM = (
    ('patch_embed.proj.', 'patch_embed.projection.'),
    ('norm.', 'norm.'),
)
# Optional temporal attention of a block (from a divided TimeSformer).
_TEMPORAL_KEYS = tuple(key[:-1] for key, _ in _TIMESFORMER_TEMPORAL)
_HEAD_PREFIXES = ('head.', 'head_dist.', 'pre_logits.', 'cls_head.', 'neck.',
                  'data_preprocessor.')

# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def load_state_dict(path: str) -> StateDict:
    """Read the tensors of a checkpoint file safely.

    Loads with ``weights_only=True`` (no code in the file can run; what
    MMEngine's Runner saves is allowed, see
    :data:`~mmaction_sttm.engine.checkpoint_loading.CHECKPOINT_SAFE_GLOBALS`)
    and unwraps the containers that training frameworks put around the weights
    (``'state_dict'``, ``'model'``, ``'module'``, DDP's ``module.`` prefix).

    Args:
        path (str): Checkpoint file.

    Returns:
        dict[str, Tensor]: The weights.
    """
    with allow_listed():
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    for key in ('state_dict', 'model', 'module'):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path} holds no state_dict (got {type(ckpt)})')
    state = {k: v for k, v in ckpt.items() if isinstance(v, Tensor)}
    if state and all(k.startswith('module.') for k in state):
        state = {k[len('module.'):]: v for k, v in state.items()}
    return state


# --------------------------------------------------------------------------
# Readers: source layout -> neutral layout
# --------------------------------------------------------------------------


def _strip_prefix(state: StateDict, prefix: str) -> StateDict:
    """Keep the keys under ``prefix`` (without it) if there are any."""
    if any(k.startswith(prefix) for k in state):
        return {
            k[len(prefix):]: v
            for k, v in state.items() if k.startswith(prefix)
        }
    return dict(state)


def _drop_heads(state: StateDict, notes: List[str]) -> StateDict:
    dropped = sorted(
        {k.split('.')[0]
         for k in state if k.startswith(_HEAD_PREFIXES)})
    if dropped:
        notes.append(f'dropped {", ".join(dropped)}: not part of the '
                     'backbone (the video config has its own head)')
    return {k: v for k, v in state.items() if not k.startswith(_HEAD_PREFIXES)}


def _reject(state: StateDict, patterns: Dict[str, str]) -> None:
    """Raise for keys of features the video backbones do not have."""
    for pattern, what in patterns.items():
        found = sorted(k for k in state if re.search(pattern, k))
        if found:
            raise ValueError(
                f'unsupported checkpoint: it has {what} ({found[0]}, ...), '
                'which the video backbones do not implement')


def _drop_dist_token(state: StateDict, notes: List[str]) -> None:
    """DeiT's distilled models have a second prefix token: drop it and its
    position slot, keeping the CLS token's."""
    if 'dist_token' in state:
        del state['dist_token']
        pos = state['pos_embed']
        state['pos_embed'] = torch.cat([pos[:, :1], pos[:, 2:]], dim=1)
        notes.append('dropped DeiT\'s distillation token and its position')


def _fill_qkv_bias(state: StateDict, depth: int, notes: List[str]) -> None:
    """Add zero qkv biases for ViTs trained without them (the backbones use
    ``qkv_bias=True``; a zero bias is the same function)."""
    missing = False
    for i in range(depth):
        key = f'blocks.{i}.attn.qkv.bias'
        if key not in state:
            weight = state[f'blocks.{i}.attn.qkv.weight']
            state[key] = weight.new_zeros(weight.shape[0])
            missing = True
    if missing:
        notes.append('the source has no qkv bias: wrote zeros (same function)')


def _depth(state: StateDict) -> int:
    indices = {
        int(m.group(1))
        for k in state
        for m in [re.match(r'blocks\.(\d+)\.', k)] if m
    }
    if not indices or sorted(indices) != list(range(len(indices))):
        raise ValueError('no consecutive blocks.<i> found after conversion')
    return len(indices)


def _check_neutral(state: StateDict) -> int:
    """Check that every parameter of the neutral layout is present."""
    depth = _depth(state)
    required = [
        'patch_embed.proj.weight', 'cls_token', 'pos_embed', 'norm.weight',
        'norm.bias'
    ]
    for i in range(depth):
        for name in _BLOCK_KEYS:
            required.append(f'blocks.{i}.{name}.weight')
            if name != 'attn.qkv':
                required.append(f'blocks.{i}.{name}.bias')
    missing = [k for k in required if k not in state]
    if missing:
        raise ValueError(f'the checkpoint lacks {len(missing)} ViT '
                         f'parameters, e.g. {missing[:3]}; is src_format '
                         'right?')
    return depth


def _from_timm(state: StateDict, notes: List[str]) -> StateDict:
    _reject(
        state, {
            r'\.ls[12]\.gamma$': 'LayerScale',
            r'^norm_pre\.': 'a pre-norm (CLIP-style ViT)',
            r'^fc_norm\.': 'average pooling (fc_norm)',
            r'^reg_token$': 'register tokens',
            r'\.(q|k)_norm\.': 'q/k normalisation',
        })
    state = _drop_heads(state, notes)
    _drop_dist_token(state, notes)
    return state


_MMPRETRAIN_RULES: Tuple[Tuple[str, str], ...] = (
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
    (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
    (r'^layers\.(\d+)\.attn\.', r'blocks.\1.attn.'),
    (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
    (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
    # mmpretrain's final norm is ``ln1`` (``final_norm=True``).
    (r'^ln1\.', 'norm.'),
)


def _rename(state: StateDict, rules: Tuple[Tuple[str, str], ...]) -> StateDict:
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            new, count = re.subn(pattern, repl, key)
            if count:
                key = new
                break
        out[key] = value
    return out


def _from_mmpretrain(state: StateDict, notes: List[str]) -> StateDict:
    state = _strip_prefix(_drop_heads(state, notes), 'backbone.')
    if 'patch_embed.projection.weight' not in state:
        raise KeyError('patch_embed.projection.weight')
    _reject(
        state, {
            r'\.gamma[12]\.': 'LayerScale',
            r'^pre_norm\.': 'a pre-norm (CLIP-style ViT)',
            r'^ln2\.': "out_type='avg_featmap' (a second final norm)",
        })
    state = _rename(state, _MMPRETRAIN_RULES)
    _drop_dist_token(state, notes)
    return state


def _timesformer_rows(state: StateDict,
                      src: str,
                      dst: str,
                      rows: Tuple[Tuple[str, str], ...],
                      inverse: bool = False) -> StateDict:
    """Weights and biases renamed by ``rows`` of (neutral, TimeSformer) key
    parts: from MMAction2's TimeSformer (``src``) to the neutral layout
    (``dst``), or the other way with ``inverse``."""
    out: StateDict = {}
    for neutral, theirs in rows:
        new, old = (theirs, neutral) if inverse else (neutral, theirs)
        for name in ('weight', 'bias'):
            out[f'{dst}{new}{name}'] = state[f'{src}{old}{name}']
    return out


def _from_mmaction_timesformer(state: StateDict,
                               notes: List[str]) -> StateDict:
    state = _strip_prefix(_drop_heads(state, notes), 'backbone.')
    layer = 'transformer_layers.layers.'
    indices = sorted({
        int(k[len(layer):].split('.')[0])
        for k in state if k.startswith(layer)
    })
    out = {
        k: state[k]
        for k in ('cls_token', 'pos_embed', 'time_embed') if k in state
    }
    out.update(_timesformer_rows(state, '', '', _TIMESFORMER_STEM))
    divided = temporal = False
    for i in indices:
        src = f'{layer}{i}.'
        if f'{src}attentions.1.attn.in_proj_weight' in state:
            divided = True
            rows = _TIMESFORMER_SPATIAL
            if f'{src}attentions.0.attn.in_proj_weight' in state:
                temporal = True
                rows += _TIMESFORMER_TEMPORAL
        else:
            rows = _TIMESFORMER_JOINT
        out.update(_timesformer_rows(state, src, f'blocks.{i}.', rows))
    if divided:
        notes.append(
            'read a divided space-time TimeSformer: spatial '
            'attention from attentions.1' +
            (', temporal attention from attentions.0' if temporal else ''))
    return out


# A key that only each layout has (searched anywhere in a key, so that
# 'backbone.' or other prefixes do not matter, unless the pattern anchors
# one), and an example of it; the first match wins. The videomae-vit entry is
# not a source: it is what this converter writes for MMAction2's
# VisionTransformer (a backbone's weights, no 'backbone.' prefix),
# recognised so that the message can say so. A recognizer checkpoint of that
# backbone (MMAction2's releases) is the mmaction-videomae source.
_LAYOUTS: Tuple[Tuple[str, str, str], ...] = (
    ('mmaction-timesformer', r'transformer_layers\.layers\.\d+\.',
     'backbone.transformer_layers.layers.0.attentions.0.attn.in_proj_weight'),
    ('mmpretrain', r'(^|\.)layers\.\d+\.ln1\.',
     'backbone.layers.0.ln1.weight'),
    ('mmaction-videomae', r'^backbone\.blocks\.\d+\.mlp\.layers\.0\.0\.',
     'backbone.blocks.0.mlp.layers.0.0.weight'),
    ('videomae-vit (a converted or MMAction2 VisionTransformer checkpoint)',
     r'(^|\.)blocks\.\d+\.mlp\.layers\.0\.0\.',
     'blocks.0.mlp.layers.0.0.weight'),
    ('videomae', r'(^|\.)blocks\.\d+\.attn\.[qv]_bias$',
     'blocks.0.attn.q_bias'),
    ('timm', r'(^|\.)blocks\.\d+\.attn\.qkv\.weight$',
     'blocks.0.attn.qkv.weight'),
)


def _tubelet_kernel(state: StateDict) -> bool:
    """Whether the patch embedding is a ``Conv3d`` (a video ViT)."""
    return any(
        re.search(r'(^|\.)patch_embed\.proj\.weight$', k) and v.dim() == 5
        for k, v in state.items())


def detect_layout(state: StateDict) -> Optional[str]:
    """Which checkpoint layout ``state`` is in, from its keys.

    Args:
        state (dict[str, Tensor]): Weights (see :func:`load_state_dict`).

    Returns:
        str | None: A ``src_format`` of :data:`SRC_FORMATS`, a few words
        for a layout that is not a source, or None if no known layout's
        keys are there.
    """
    for name, pattern, _ in _LAYOUTS:
        if any(re.search(pattern, key) for key in state):
            # VideoMAE trained without q/v biases has timm's key names; its
            # tubelet kernel tells it apart.
            if name == 'timm' and _tubelet_kernel(state):
                return 'videomae'
            return name
    return None


def _check_layout(state: StateDict, src_format: str) -> None:
    """Raise, naming the layout expected and the one found, unless
    ``state`` is in ``src_format``'s layout."""
    found = detect_layout(state)
    if found == src_format:
        return
    example = {name: key for name, _, key in _LAYOUTS}[src_format]
    expected = f'expected the {src_format} layout (keys like {example})'
    if found is None:
        keys = ', '.join(sorted(state)[:3]) or 'none'
        raise ValueError(f'{expected}, found none of the ViT layouts it '
                         f'reads ({len(state)} tensors, e.g. {keys})')
    hint = (f'; convert it with src_format {found!r}'
            if found in SRC_FORMATS else '; it needs no conversion')
    raise ValueError(f'{expected}, found the {found} layout{hint}')


_READERS: Dict[str, Callable[[StateDict, List[str]], StateDict]] = {
    'timm': _from_timm,
    'mmpretrain': _from_mmpretrain,
    'mmaction-timesformer': _from_mmaction_timesformer,
}


def to_neutral(state: StateDict,
               src_format: str,
               notes: Optional[List[str]] = None) -> StateDict:
    """Convert a source checkpoint to the neutral (timm) layout.

    Args:
        state (dict[str, Tensor]): Source weights (see
            :func:`load_state_dict`).
        src_format (str): One of :data:`SRC_FORMATS`.
        notes (list[str], optional): Receives what was dropped or filled in.

    Returns:
        dict[str, Tensor]: timm-named ViT weights without head; a divided
        TimeSformer source adds ``time_embed`` and per-block
        ``temporal_{norm,attn.qkv,attn.proj,fc}``.
    """
    if src_format in VIDEO_SRC_FORMATS:
        raise ValueError(f'src_format {src_format!r} is a video ViT: it '
                         "converts to dst 'videomae-vit' only "
                         '(convert_videomae_state_dict)')
    if src_format not in _READERS:
        raise ValueError(f'src_format must be one of {SRC_FORMATS}, '
                         f'got {src_format!r}')
    notes = [] if notes is None else notes
    _check_layout(state, src_format)
    try:
        state = _READERS[src_format](dict(state), notes)
    except KeyError as err:
        raise ValueError(f'the checkpoint lacks {err} of the {src_format} '
                         'layout; is src_format right?') from None
    depth = _check_neutral(state)
    _fill_qkv_bias(state, depth, notes)
    return state


# --------------------------------------------------------------------------
# Writers: neutral layout -> target layout
# --------------------------------------------------------------------------


def _is_temporal(key: str) -> bool:
    return any(f'.{name}.' in key for name in _TEMPORAL_KEYS)


def _time_embed(state: StateDict, num_frames: Optional[int],
                notes: List[str]) -> Optional[Tensor]:
    """The source's temporal embedding resampled to ``num_frames``."""
    if 'time_embed' not in state:
        notes.append('the source has no temporal embedding: time_embed is '
                     'left to the backbone (zeros), so a static clip gives '
                     'the image features')
        return None
    time_embed = state['time_embed']
    if num_frames and time_embed.shape[1] != num_frames:
        notes.append(f'resampled time_embed from {time_embed.shape[1]} to '
                     f'{num_frames} frames')
        time_embed = interpolate_time_embed(time_embed, num_frames)
    return time_embed


def _to_spacetime_vit(state: StateDict, depth: int, notes: List[str],
                      num_frames: Optional[int], **_) -> StateDict:
    out = {
        k: v
        for k, v in state.items() if k != 'time_embed' and not _is_temporal(k)
    }
    if any(_is_temporal(k) for k in state):
        notes.append('dropped the temporal attention of the divided blocks: '
                     'SpaceTimeViT attends jointly and has none')
    time_embed = _time_embed(state, num_frames, notes)
    if time_embed is not None:
        out['time_embed'] = time_embed
    return out


def _to_timesformer(state: StateDict, depth: int, notes: List[str],
                    num_frames: Optional[int], **_) -> StateDict:
    out = {
        'cls_token': state['cls_token'],
        'pos_embed': state['pos_embed'],
    }
    time_embed = _time_embed(state, num_frames, notes)
    if time_embed is not None:
        out['time_embed'] = time_embed
    out.update(
        _timesformer_rows(state, '', '', _TIMESFORMER_STEM, inverse=True))
    copied = False
    for i in range(depth):
        src, dst = f'blocks.{i}.', f'transformer_layers.layers.{i}.'
        out.update(
            _timesformer_rows(
                state, src, dst, _TIMESFORMER_SPATIAL, inverse=True))
        if f'{src}temporal_fc.weight' in state:
            out.update(
                _timesformer_rows(
                    state, src, dst, _TIMESFORMER_TEMPORAL, inverse=True))
            continue
        # MMAction2's TimeSformer.init_weights: the temporal attention (and
        # its norm) starts as a copy of the spatial one ...
        # (norm, qkv and proj: the first three rows of both tables)
        copied = True
        for (_, theirs), (neutral, _) in zip(_TIMESFORMER_TEMPORAL[:3],
                                             _TIMESFORMER_SPATIAL[:3]):
            for name in ('weight', 'bias'):
                out[f'{dst}{theirs}{name}'] = state[
                    f'{src}{neutral}{name}'].clone()
        # ... and DividedTemporalAttentionWithNorm.init_weights zeroes
        # temporal_fc, so the temporal branch adds nothing at first.
        like = state[f'{src}attn.proj.weight']
        dims = like.shape[0]
        out[f'{dst}attentions.0.temporal_fc.weight'] = like.new_zeros(
            dims, dims)
        out[f'{dst}attentions.0.temporal_fc.bias'] = like.new_zeros(dims)
    if copied:
        notes.append('temporal attention initialised as a copy of the '
                     'spatial one, temporal_fc as zeros (as MMAction2\'s '
                     'TimeSformer.init_weights)')
    return out


def _to_videomae_vit(state: StateDict, depth: int, notes: List[str],
                     num_frames: Optional[int], tubelet_size: int,
                     videomae_pos_embed: str, **_) -> StateDict:
    if videomae_pos_embed not in VIDEOMAE_POS_EMBEDS:
        raise ValueError(f'videomae_pos_embed must be one of '
                         f'{VIDEOMAE_POS_EMBEDS}, got {videomae_pos_embed!r}')
    num_frames = num_frames or 16
    if num_frames % tubelet_size:
        raise ValueError(f'num_frames ({num_frames}) must be a multiple of '
                         f'tubelet_size ({tubelet_size})')
    slices = num_frames // tubelet_size
    dims = state['cls_token'].shape[-1]
    out: StateDict = {}
    # Inflate the 2D kernel over the tubelet, divided by its length: a
    # static tubelet then gives exactly the 2D patch embedding.
    kernel = state['patch_embed.proj.weight']
    out['patch_embed.projection.weight'] = (
        kernel.unsqueeze(2).repeat(1, 1, tubelet_size, 1, 1) / tubelet_size)
    out['patch_embed.projection.bias'] = state['patch_embed.proj.bias']
    if videomae_pos_embed == 'learned':
        spatial = state['pos_embed'][:, 1:]
        pos = spatial.unsqueeze(1).repeat(1, slices, 1, 1)
        if 'time_embed' in state:
            # Each tubelet slice gets the mean temporal embedding of its
            # frames.
            time_embed = interpolate_time_embed(state['time_embed'],
                                                num_frames)
            time_embed = time_embed.reshape(1, slices, tubelet_size,
                                            dims).mean(2)
            pos = pos + time_embed.unsqueeze(2)
        out['pos_embed'] = pos.reshape(1, -1, dims)
        notes.append(f'tiled the spatial position embedding over {slices} '
                     'tubelet slices: build the backbone with '
                     f'use_learnable_pos_emb=True, num_frames={num_frames}')
    else:
        notes.append('left pos_embed out: the backbone keeps its fixed '
                     'sinusoidal table (ImageNet positions are not used)')
    for i in range(depth):
        src = f'blocks.{i}.'
        for name in ('norm1', 'norm2', 'attn.proj'):
            for p in ('weight', 'bias'):
                out[f'{src}{name}.{p}'] = state[f'{src}{name}.{p}']
        out[f'{src}attn.qkv.weight'] = state[f'{src}attn.qkv.weight']
        q_bias, _, v_bias = state[f'{src}attn.qkv.bias'].chunk(3)
        out[f'{src}attn.q_bias'] = q_bias
        out[f'{src}attn.v_bias'] = v_bias
        for name, mm in (('mlp.fc1', 'mlp.layers.0.0'), ('mlp.fc2',
                                                         'mlp.layers.1')):
            for p in ('weight', 'bias'):
                out[f'{src}{mm}.{p}'] = state[f'{src}{name}.{p}']
    for p in ('weight', 'bias'):
        out[f'fc_norm.{p}'] = state[f'norm.{p}']
    notes.append('dropped cls_token and its position (VideoMAE has no CLS '
                 'token) and the k part of the qkv bias (exact: softmax '
                 'ignores it); norm became fc_norm on the mean token. Without '
                 'the CLS token this is an initialisation, not the image '
                 'model\'s function')
    if any(_is_temporal(k) for k in state):
        notes.append('dropped the temporal attention of the divided blocks')
    return out


# --------------------------------------------------------------------------
# VideoMAE sources -> videomae-vit (no neutral layout: nothing is made up)
# --------------------------------------------------------------------------

# VideoMAE's block names against MMAction2's (the MLP is an mmcv FFN there).
_VIDEOMAE_RULES: Tuple[Tuple[str, str], ...] = (
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^blocks\.(\d+)\.mlp\.fc1\.', r'blocks.\1.mlp.layers.0.0.'),
    (r'^blocks\.(\d+)\.mlp\.fc2\.', r'blocks.\1.mlp.layers.1.'),
)
# What MMAction2's VisionTransformer block holds (LayerScale optional).
_VIDEOMAE_BLOCK_KEYS = ('norm1.weight', 'norm1.bias', 'attn.qkv.weight',
                        'attn.q_bias', 'attn.v_bias', 'attn.proj.weight',
                        'attn.proj.bias', 'norm2.weight', 'norm2.bias',
                        'mlp.layers.0.0.weight', 'mlp.layers.0.0.bias',
                        'mlp.layers.1.weight', 'mlp.layers.1.bias')
# VideoMAE's pre-training model around its encoder.
_VIDEOMAE_PRETRAIN_ONLY = ('decoder.', 'encoder_to_decoder.', 'mask_token')


def _from_videomae(state: StateDict, notes: List[str]) -> StateDict:
    """VideoMAE's (and VideoMAE V2's) ``VisionTransformer`` or pre-training
    encoder, renamed to MMAction2's ``VisionTransformer``."""
    pretrain = any(k.startswith('encoder.') for k in state)
    if pretrain:
        dropped = sorted({
            k.split('.')[0]
            for k in state if k.startswith(_VIDEOMAE_PRETRAIN_ONLY)
        })
        notes.append('a VideoMAE pre-training checkpoint: kept the encoder' +
                     (f', dropped {", ".join(dropped)}' if dropped else ''))
        state = _strip_prefix(state, 'encoder.')
        # VideoMAE's fine-tuning model has no final norm with mean pooling:
        # run_class_finetuning.py loads non-strictly, so the encoder's norm
        # is not used and fc_norm starts as LayerNorm's init.
        if 'norm.weight' in state and 'fc_norm.weight' not in state:
            weight = state.pop('norm.weight')
            state.pop('norm.bias', None)
            state['fc_norm.weight'] = torch.ones_like(weight)
            state['fc_norm.bias'] = torch.zeros_like(weight)
            notes.append('dropped the encoder\'s final norm and wrote '
                         'fc_norm as ones / zeros, as VideoMAE\'s '
                         'fine-tuning starts it')
    else:
        state = _strip_prefix(state, 'backbone.')
    _reject(
        state, {
            r'^cls_token$': 'a CLS token',
            r'\.attn\.scale$': "VideoMAE V2's cosine attention",
            r'\.(q|k)_norm\.': 'q/k normalisation',
        })
    head = {
        k: v
        for k, v in state.items() if k in ('head.weight', 'head.bias')
    }
    state = {
        k: v
        for k, v in state.items()
        if not k.startswith(('head.', 'fc_dropout.')) and k != 'head'
    }
    kernel = state.get('patch_embed.proj.weight')
    if kernel is None or kernel.dim() != 5:
        raise ValueError('the patch embedding is not a tubelet Conv3d '
                         f'(patch_embed.proj.weight: '
                         f'{None if kernel is None else tuple(kernel.shape)})'
                         '; an image ViT converts with --src-format timm')
    out = _rename(state, _VIDEOMAE_RULES)
    depth = _depth(out)
    filled = False
    for i in range(depth):
        src = f'blocks.{i}.attn.'
        if f'{src}qkv.bias' in out:
            # A full qkv bias: the k part adds the same q . b_k to every
            # logit of a query, which softmax ignores.
            q_bias, _, v_bias = out.pop(f'{src}qkv.bias').chunk(3)
            out[f'{src}q_bias'], out[f'{src}v_bias'] = q_bias, v_bias
        elif f'{src}q_bias' not in out:
            weight = out[f'{src}qkv.weight']
            dims = weight.shape[0] // 3
            out[f'{src}q_bias'] = weight.new_zeros(dims)
            out[f'{src}v_bias'] = weight.new_zeros(dims)
            filled = True
    if filled:
        notes.append('the source has no q/v biases: wrote zeros (the same '
                     'function as qkv_bias=False)')
    if 'fc_norm.weight' not in out and 'norm.weight' in out:
        notes.append('the source reads out with its final norm (no fc_norm, '
                     "VideoMAE's use_mean_pooling=False): build the "
                     'backbone with use_mean_pooling=False')
    for key, value in head.items():
        out[key] = value
    return out


def _from_mmaction_videomae(state: StateDict, notes: List[str]) -> StateDict:
    """MMAction2's VideoMAE recognizer: the backbone's own names."""
    head = {
        f'head.{k.rsplit(".", 1)[1]}': v
        for k, v in state.items()
        if k in ('cls_head.fc_cls.weight', 'cls_head.fc_cls.bias')
    }
    out = {
        k[len('backbone.'):]: v
        for k, v in state.items() if k.startswith('backbone.')
    }
    out.update(head)
    return out


def _check_videomae(state: StateDict) -> int:
    """Check that every parameter of MMAction2's VisionTransformer is there;
    return the depth."""
    depth = _depth(state)
    required = ['patch_embed.projection.weight', 'patch_embed.projection.bias']
    required += [
        f'blocks.{i}.{key}' for i in range(depth)
        for key in _VIDEOMAE_BLOCK_KEYS
    ]
    if 'norm.weight' not in state:
        required += ['fc_norm.weight', 'fc_norm.bias']
    missing = [k for k in required if k not in state]
    if missing:
        raise ValueError(f'the checkpoint lacks {len(missing)} VideoMAE ViT '
                         f'parameters, e.g. {missing[:3]}; is src_format '
                         'right?')
    return depth


def _sinusoid_pos_embed(state: StateDict, num_frames: int,
                        img_size: int) -> Tensor:
    """MMAction2's fixed position table for the converted backbone."""
    from mmaction.models.backbones.vit_mae import get_sinusoid_encoding
    kernel = state['patch_embed.projection.weight']
    tubelet, patch = kernel.shape[2], kernel.shape[3]
    if num_frames % tubelet or img_size % patch:
        raise ValueError(f'num_frames ({num_frames}) and img_size '
                         f'({img_size}) must be multiples of the tubelet '
                         f'({tubelet}) and patch ({patch}) sizes')
    count = (num_frames // tubelet) * (img_size // patch)**2
    return get_sinusoid_encoding(count, kernel.shape[0])


_VIDEO_READERS: Dict[str, Callable[[StateDict, List[str]], StateDict]] = {
    'videomae': _from_videomae,
    'mmaction-videomae': _from_mmaction_videomae,
}


def convert_videomae_state_dict(
        state: StateDict,
        src_format: str,
        num_frames: Optional[int] = None,
        img_size: int = 224,
        with_head: bool = False) -> Tuple[StateDict, List[str]]:
    """Convert a VideoMAE-layout checkpoint for MMAction2's
    ``VisionTransformer`` and :class:`~mmaction_sttm.models.
    MergingVisionTransformer` (the zoo's ``videomae-vit``).

    Every tensor maps to one of the same shape and meaning, so the converted
    model computes what the source computed: ``patch_embed.proj`` becomes
    ``patch_embed.projection``, ``mlp.fc1`` / ``fc2`` the FFN's
    ``mlp.layers.0.0`` / ``layers.1``; ``q_bias`` / ``v_bias``, the norms,
    ``fc_norm`` and LayerScale's ``gamma_1`` / ``gamma_2`` keep their names.
    A pre-training checkpoint gives its encoder, with ``fc_norm`` as
    VideoMAE's fine-tuning starts it. VideoMAE does not store its fixed
    sinusoidal position table; the one MMAction2's backbone registers for
    ``num_frames`` x ``img_size`` is written, so that the result loads
    strictly (a learned ``pos_embed`` of the source is kept instead).

    Args:
        state (dict[str, Tensor]): Source weights (see
            :func:`load_state_dict`).
        src_format (str): ``'videomae'`` or ``'mmaction-videomae'``.
        num_frames (int, optional): Frames of the target backbone, for the
            position table. Defaults to 16 (VideoMAE's).
        img_size (int): Input size of the target backbone, for the position
            table. Defaults to 224.
        with_head (bool): Keep the classifier, as ``cls_head.fc_cls``, and
            write a recognizer's weights (``backbone.`` prefix) for
            ``load_from`` or ``tools/test.py``. Defaults to False (the
            backbone's weights, for ``model.backbone.pretrained``).

    Returns:
        tuple[dict[str, Tensor], list[str]]: The converted weights and notes
        on what was dropped or filled in.
    """
    if src_format not in _VIDEO_READERS:
        raise ValueError(f'src_format must be one of {VIDEO_SRC_FORMATS}, '
                         f'got {src_format!r}')
    notes: List[str] = []
    _check_layout(state, src_format)
    out = _VIDEO_READERS[src_format](dict(state), notes)
    head = {k: out.pop(k) for k in ('head.weight', 'head.bias') if k in out}
    _check_videomae(out)
    if 'pos_embed' not in out:
        num_frames = num_frames or 16
        out['pos_embed'] = _sinusoid_pos_embed(out, num_frames, img_size)
        notes.append('wrote the fixed sinusoidal pos_embed of '
                     f'{num_frames} frames at {img_size} (the source does '
                     'not store it)')
    elif num_frames:
        # The source's own table (learned, or MMAction2's stored buffer):
        # kept, but it must fit the frames asked for.
        want = _sinusoid_pos_embed(out, num_frames, img_size).shape[1]
        if out['pos_embed'].shape[1] != want:
            raise ValueError(f'the source pos_embed has '
                             f'{out["pos_embed"].shape[1]} positions, not '
                             f'the {want} of {num_frames} frames at '
                             f'{img_size}')
    if not with_head:
        if head:
            notes.append('dropped the classifier (head): the config has its '
                         'own; --with-head keeps it')
        return out, notes
    if not head:
        raise ValueError('with_head: the checkpoint has no classifier')
    out = {f'backbone.{k}': v for k, v in out.items()}
    for key, value in head.items():
        out[f'cls_head.fc_cls.{key.split(".")[1]}'] = value
    notes.append(f'kept the classifier as cls_head.fc_cls '
                 f'({head["head.weight"].shape[0]} classes)')
    return out, notes


_WRITERS: Dict[str, Callable[..., StateDict]] = {
    'spacetime-vit': _to_spacetime_vit,
    'timesformer': _to_timesformer,
    'videomae-vit': _to_videomae_vit,
}


def from_neutral(state: StateDict,
                 dst: str,
                 num_frames: Optional[int] = None,
                 tubelet_size: int = 2,
                 videomae_pos_embed: str = 'learned',
                 notes: Optional[List[str]] = None) -> StateDict:
    """Write neutral-layout weights in a target backbone's layout.

    Args:
        state (dict[str, Tensor]): Output of :func:`to_neutral`.
        dst (str): One of :data:`DST_FORMATS`.
        num_frames (int, optional): Frames of the target backbone. Resamples
            a source ``time_embed``; sets the tubelet slices of
            ``videomae-vit`` (default 16 there). None keeps the source's.
        tubelet_size (int): Tubelet length of ``videomae-vit``. Defaults
            to 2.
        videomae_pos_embed (str): ``'learned'`` tiles the ImageNet position
            embedding (for ``use_learnable_pos_emb=True``); ``'sincos'``
            leaves it out. Defaults to ``'learned'``.
        notes (list[str], optional): Receives what was dropped or made up.

    Returns:
        dict[str, Tensor]: Weights for the target backbone (no prefix).
    """
    if dst not in _WRITERS:
        raise ValueError(f'dst must be one of {DST_FORMATS}, got {dst!r}')
    notes = [] if notes is None else notes
    depth = _check_neutral(state)
    return _WRITERS[dst](
        state,
        depth,
        notes,
        num_frames=num_frames,
        tubelet_size=tubelet_size,
        videomae_pos_embed=videomae_pos_embed)


def convert_state_dict(state: StateDict,
                       src_format: str,
                       dst: str,
                       num_frames: Optional[int] = None,
                       tubelet_size: int = 2,
                       videomae_pos_embed: str = 'learned',
                       img_size: int = 224,
                       with_head: bool = False) -> Tuple[StateDict, List[str]]:
    """Convert source weights into a target backbone's layout.

    Args:
        state (dict[str, Tensor]): Source weights.
        src_format (str): One of :data:`SRC_FORMATS`.
        dst (str): One of :data:`DST_FORMATS` (``'videomae-vit'`` for the
            :data:`VIDEO_SRC_FORMATS`).
        num_frames (int, optional): See :func:`from_neutral` and
            :func:`convert_videomae_state_dict`.
        tubelet_size (int): See :func:`from_neutral`.
        videomae_pos_embed (str): See :func:`from_neutral`.
        img_size (int): VideoMAE sources only, see
            :func:`convert_videomae_state_dict`.
        with_head (bool): VideoMAE sources only, see
            :func:`convert_videomae_state_dict`.

    Returns:
        tuple[dict[str, Tensor], list[str]]: The converted weights and notes
        on what was dropped, filled in or initialised.
    """
    if src_format in VIDEO_SRC_FORMATS:
        if dst != 'videomae-vit':
            raise ValueError(f'src_format {src_format!r} (a video ViT) '
                             f"converts to dst 'videomae-vit' only, got "
                             f'{dst!r}')
        return convert_videomae_state_dict(state, src_format, num_frames,
                                           img_size, with_head)
    if with_head:
        raise ValueError('with_head: only the VideoMAE sources keep their '
                         'classifier (image classes are not video classes)')
    notes: List[str] = []
    neutral = to_neutral(state, src_format, notes)
    out = from_neutral(neutral, dst, num_frames, tubelet_size,
                       videomae_pos_embed, notes)
    return out, notes


def convert_checkpoint(src: str,
                       out: str,
                       src_format: str,
                       dst: str,
                       num_frames: Optional[int] = None,
                       tubelet_size: int = 2,
                       videomae_pos_embed: str = 'learned',
                       img_size: int = 224,
                       with_head: bool = False) -> List[str]:
    """Convert a checkpoint file and save the result.

    The output is ``{'state_dict': ..., 'meta': ...}``, which MMEngine's
    ``Pretrained`` initialisation, ``load_checkpoint`` and MMAction2's
    ``TimeSformer(pretrained=...)`` all read. ``meta`` records the source
    file name (not its directory) and the conversion arguments.

    Args:
        src (str): Source checkpoint.
        out (str): Output file; its directory is created.
        src_format (str): One of :data:`SRC_FORMATS`.
        dst (str): One of :data:`DST_FORMATS`.
        num_frames (int, optional): See :func:`from_neutral`.
        tubelet_size (int): See :func:`from_neutral`.
        videomae_pos_embed (str): See :func:`from_neutral`.
        img_size (int): See :func:`convert_videomae_state_dict`.
        with_head (bool): See :func:`convert_videomae_state_dict`.

    Returns:
        list[str]: Notes on what was dropped, filled in or initialised.
    """
    state, notes = convert_state_dict(
        load_state_dict(src), src_format, dst, num_frames, tubelet_size,
        videomae_pos_embed, img_size, with_head)
    video = src_format in VIDEO_SRC_FORMATS
    meta = dict(
        converted_from=osp.basename(src),
        src_format=src_format,
        dst=dst,
        num_frames=num_frames,
        tubelet_size=tubelet_size
        if dst == 'videomae-vit' and not video else None,
        videomae_pos_embed=videomae_pos_embed
        if dst == 'videomae-vit' and not video else None,
        img_size=img_size if video else None,
        with_head=with_head if video else None)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(dict(state_dict=state, meta=meta), out)
    return notes
