"""Tests of ``tools/data/build_video_lists.py`` on files in the official
K400 csv / SSv2 json formats, and of the lists with MMAction2's
``VideoDataset``."""
import json
import os.path as osp

import pytest
from tool_modules import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def tool():
    return load_tool('build_video_lists',
                     osp.join(REPO, 'tools', 'data', 'build_video_lists.py'))


def test_kinetics400(tool, tmp_path):
    train_csv = tmp_path / 'train.csv'
    train_csv.write_text('label,youtube_id,time_start,time_end,split,is_cc\n'
                         'playing violin,abcdefghijk,10,20,train,0\n'
                         'abseiling,ABCDEFGHIJK,0,10,train,0\n'
                         'zumba,zzzzzzzzzzz,5,15,train,0\n')
    val_csv = tmp_path / 'validate.csv'
    val_csv.write_text('label,youtube_id,time_start,time_end,split\n'
                       'zumba,valvalvalva,1,11,val\n'
                       'abseiling,gone0000000,1,11,val\n')
    videos = tmp_path / 'videos_val'
    (videos / 'zumba').mkdir(parents=True)
    (videos / 'zumba' / 'valvalvalva_000001_000011.mp4').write_bytes(b'')
    out = tmp_path / 'lists' / 'val.txt'
    tool.main([
        'kinetics400', '--csv',
        str(val_csv), '--classes-from',
        str(train_csv), '--video-dir',
        str(videos), '--out',
        str(out)
    ])
    # Alphabetical classes of the training csv: abseiling 0, playing
    # violin 1, zumba 2; the taken-down video is left out.
    assert out.read_text() == 'zumba/valvalvalva_000001_000011.mp4 2\n'


def test_sthv2_and_video_dataset(tool, tmp_path):
    from mmaction.datasets import VideoDataset
    labels = tmp_path / 'labels.json'
    labels.write_text(
        json.dumps({
            'Pushing something from left to right': '93',
            'Holding something next to something': '27'
        }))
    split = tmp_path / 'validation.json'
    split.write_text(
        json.dumps([
            dict(
                id='101',
                label='pushing a cup from left to right',
                template='Pushing [something] from left to right',
                placeholders=['a cup']),
            dict(
                id='102',
                label='holding a pen next to a book',
                template='Holding [something] next to [something]',
                placeholders=['a pen', 'a book']),
            dict(
                id='103',
                label='holding a pen next to a cup',
                template='Holding [something] next to [something]',
                placeholders=['a pen', 'a cup']),
        ]))
    videos = tmp_path / 'videos'
    videos.mkdir()
    for name in ('101.webm', '102.webm'):
        (videos / name).write_bytes(b'')
    out = tmp_path / 'sthv2_val_list_videos.txt'
    tool.main([
        'sthv2', '--json',
        str(split), '--labels',
        str(labels), '--video-dir',
        str(videos), '--out',
        str(out)
    ])
    assert out.read_text() == '101.webm 93\n102.webm 27\n'
    dataset = VideoDataset(
        ann_file=str(out),
        pipeline=[],
        data_prefix=dict(video=str(videos)),
        test_mode=True)
    assert [d['label'] for d in dataset] == [93, 27]
    assert dataset[0]['filename'] == str(videos / '101.webm')
