"""Convert ImageNet ViT and VideoMAE weights for the video backbones.

Examples::

    # DeiT-B (timm) for the paper's ViT-B (SpaceTimeViT)
    python tools/convert_weights.py deit_base_patch16_224.pth \
        checkpoints/vit-base-p16_in1k_spacetime-vit.pth \
        --src-format timm --dst spacetime-vit

    # the same weights for TimeSformer / MergingTimeSformer
    python tools/convert_weights.py deit_base_patch16_224.pth \
        checkpoints/vit-base-p16_in1k_timesformer.pth \
        --src-format timm --dst timesformer

    # an mmpretrain ViT-B for MMAction2's VideoMAE VisionTransformer
    python tools/convert_weights.py vit-base-p16_in1k.pth \
        checkpoints/vit-base-p16_in1k_videomae-vit.pth \
        --src-format mmpretrain --dst videomae-vit --num-frames 16

    # VideoMAE's ViT-L Kinetics-400 pre-training (its checkpoint-1599.pth)
    # for the zoo's VideoMAE configs (configs/videomae/)
    python tools/convert_weights.py checkpoint-1599.pth \
        checkpoints/vit-large-p16_videomae-k400-pre_videomae-vit.pth \
        --src-format videomae --dst videomae-vit

    # MMAction2's released VideoMAE ViT-L recognizer (vit-large-p16_videomae-
    # k400-pre_16x4x1_kinetics-400_20221013-229dbb03.pth), classifier kept,
    # for tools/test.py (the Kinetics-400 classes of its head)
    python tools/convert_weights.py MMACTION2_VIDEOMAE_VIT_L.pth \
        checkpoints/vit-large-p16_videomae-k400-ft.pth \
        --src-format mmaction-videomae --dst videomae-vit --with-head

What maps and what does not is documented in
:mod:`mmaction_sttm.conversion.weights`; the tool prints it for each
conversion.
A source in another layout than ``--src-format`` says which layout was
expected and which was found, in one line (exit status 2).
"""
import argparse
from typing import List, Optional

from mmaction_sttm import tooling
from mmaction_sttm.conversion.weights import SRC_FORMATS  # noqa
from mmaction_sttm.conversion.weights import (DST_FORMATS, VIDEOMAE_POS_EMBEDS,
                                              convert_checkpoint)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert ImageNet ViT weights for the video backbones')
    parser.add_argument('src', help='source checkpoint')
    parser.add_argument('dst_file', metavar='DST', help='output checkpoint')
    parser.add_argument(
        '--src-format',
        required=True,
        choices=SRC_FORMATS,
        help='layout of the source checkpoint')
    parser.add_argument(
        '--dst',
        required=True,
        choices=DST_FORMATS,
        help='backbone the output is for')
    parser.add_argument(
        '--num-frames',
        type=int,
        default=None,
        help='frames of the target backbone: resamples a source time_embed; '
        'number of tubelet slices for videomae-vit (default 16 there)')
    parser.add_argument(
        '--tubelet-size',
        type=int,
        default=2,
        help='tubelet length of videomae-vit (default 2)')
    parser.add_argument(
        '--videomae-pos-embed',
        choices=VIDEOMAE_POS_EMBEDS,
        default='learned',
        help='videomae-vit: tile the ImageNet positions (learned, needs '
        'use_learnable_pos_emb=True) or keep the sinusoidal table')
    parser.add_argument(
        '--img-size',
        type=int,
        default=224,
        help='VideoMAE sources: input size of the target backbone, for the '
        'sinusoidal position table written beside the weights (default 224)')
    parser.add_argument(
        '--with-head',
        action='store_true',
        help='VideoMAE sources: keep the classifier and write a '
        "recognizer's weights (backbone. and cls_head.fc_cls.) for "
        'load_from or tools/test.py')
    tooling.add_traceback_flag(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    tooling.require_file(args.src, 'source checkpoint')
    try:
        notes = convert_checkpoint(
            args.src,
            args.dst_file,
            src_format=args.src_format,
            dst=args.dst,
            num_frames=args.num_frames,
            tubelet_size=args.tubelet_size,
            videomae_pos_embed=args.videomae_pos_embed,
            img_size=args.img_size,
            with_head=args.with_head)
    except ValueError as error:
        # A source in another layout than --src-format, or one the video
        # backbones cannot take: say so in one line (the tools' status 2).
        raise tooling.ToolError(
            f'{args.src}: {tooling.error_line(error)}') from error
    print(f'{args.src} ({args.src_format}) -> {args.dst_file} ({args.dst})')
    for note in notes:
        print(f'  - {note}')


if __name__ == '__main__':
    tooling.run(main)
