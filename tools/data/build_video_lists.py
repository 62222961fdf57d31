"""Build MMAction2 video lists (``path label`` per line) for K400 and SSv2.

Kinetics-400, from the official csv (``label,youtube_id,time_start,
time_end,split[,is_cc]``) and the downloaded videos::

    python tools/data/build_video_lists.py kinetics400 \
        --csv kinetics400/train.csv --video-dir data/kinetics400/videos_train \
        --out data/kinetics400/kinetics400_train_list_videos.txt \
        --classes-from kinetics400/train.csv

Something-Something V2, from the official json files and the ``.webm``
videos::

    python tools/data/build_video_lists.py sthv2 \
        --json something-something-v2-train.json \
        --labels something-something-v2-labels.json \
        --video-dir data/sthv2/videos \
        --out data/sthv2/sthv2_train_list_videos.txt

Kinetics classes are numbered in alphabetical order of their names (the
order of MMAction2's ``label_map_k400.txt``), always taken from the training
csv so that train and val agree. Videos are matched by YouTube id (the first
11 characters of the file name), which covers both ``<id>.mp4`` and the
``<id>_<start>_<end>.mp4`` names of the usual download scripts, in one folder
or in per-class folders. Entries without a video (taken down from YouTube)
are counted and left out. SSv2 labels are the ids that the labels json gives
to each template (with its ``[something]`` brackets removed).
"""
import argparse
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmaction_sttm import tooling

VIDEO_EXTENSIONS = ('.mp4', '.webm', '.mkv', '.avi')
YOUTUBE_ID_LEN = 11


def kinetics_classes(csv_file: str) -> List[str]:
    """Class names of a Kinetics csv, sorted alphabetically."""
    with open(csv_file, newline='') as f:
        return sorted({row['label'] for row in csv.DictReader(f)})


def _index_videos(video_dir: str) -> Dict[str, str]:
    """YouTube id -> video path relative to ``video_dir``."""
    index = {}
    for root, _, files in os.walk(video_dir):
        for name in files:
            if name.lower().endswith(VIDEO_EXTENSIONS):
                path = osp.relpath(osp.join(root, name), video_dir)
                index.setdefault(name[:YOUTUBE_ID_LEN], path)
    return index


def kinetics_list(csv_file: str, video_dir: str,
                  classes: Sequence[str]) -> Tuple[List[str], int]:
    """Lines of a Kinetics video list.

    Args:
        csv_file (str): Official csv of one split.
        video_dir (str): Folder of that split's videos (the config's
            ``data_prefix``).
        classes (Sequence[str]): Class names in label order.

    Returns:
        tuple[list[str], int]: ``'path label'`` lines and the number of csv
        entries without a video.
    """
    label_of = {name: i for i, name in enumerate(classes)}
    videos = _index_videos(video_dir)
    lines, missing = [], 0
    with open(csv_file, newline='') as f:
        for row in csv.DictReader(f):
            path = videos.get(row['youtube_id'])
            if path is None:
                missing += 1
                continue
            lines.append(f'{path} {label_of[row["label"]]}')
    return lines, missing


def sthv2_list(json_file: str,
               labels_file: str,
               video_dir: Optional[str] = None) -> Tuple[List[str], int]:
    """Lines of an SSv2 video list.

    Args:
        json_file (str): Official json of one split (a list of
            ``{"id", "label", "template", "placeholders"}``).
        labels_file (str): ``something-something-v2-labels.json`` (template
            -> label id).
        video_dir (str, optional): If given, entries without
            ``<id>.webm`` there are left out.

    Returns:
        tuple[list[str], int]: ``'<id>.webm label'`` lines and the number of
        entries without a video.
    """
    with open(labels_file) as f:
        label_of = {k: int(v) for k, v in json.load(f).items()}
    with open(json_file) as f:
        entries = json.load(f)
    lines, missing = [], 0
    for entry in entries:
        name = f'{entry["id"]}.webm'
        if video_dir is not None and not osp.isfile(osp.join(video_dir, name)):
            missing += 1
            continue
        template = entry['template'].replace('[', '').replace(']', '')
        lines.append(f'{name} {label_of[template]}')
    return lines, missing


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Build MMAction2 video lists for K400 / SSv2')
    sub = parser.add_subparsers(dest='dataset', required=True)
    k400 = sub.add_parser('kinetics400')
    k400.add_argument('--csv', required=True, help='official csv of a split')
    k400.add_argument(
        '--classes-from',
        required=True,
        help='training csv: classes are numbered in its alphabetical order')
    k400.add_argument('--video-dir', required=True)
    k400.add_argument('--out', required=True)
    ssv2 = sub.add_parser('sthv2')
    ssv2.add_argument(
        '--json', required=True, help='official json of a '
        'split')
    ssv2.add_argument(
        '--labels', required=True, help='something-something-v2-labels.json')
    ssv2.add_argument(
        '--video-dir',
        default=None,
        help='leave out entries without a video here')
    ssv2.add_argument('--out', required=True)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.dataset == 'kinetics400':
        tooling.require_file(args.csv, '--csv')
        tooling.require_file(args.classes_from, '--classes-from')
    else:
        tooling.require_file(args.json, '--json')
        tooling.require_file(args.labels, '--labels')
    if args.video_dir is not None:
        tooling.require_dir(args.video_dir, '--video-dir')
    if args.dataset == 'kinetics400':
        lines, missing = kinetics_list(args.csv, args.video_dir,
                                       kinetics_classes(args.classes_from))
    else:
        lines, missing = sthv2_list(args.json, args.labels, args.video_dir)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.writelines(f'{line}\n' for line in lines)
    print(f'{args.out}: {len(lines)} videos, {missing} entries without a '
          'video left out')


if __name__ == '__main__':
    tooling.run(main)
