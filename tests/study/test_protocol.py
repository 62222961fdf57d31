"""sttm_study.protocol: every committed protocol config loads as a plan, and a
wrong one fails in one line that names the key and the file."""
import glob
import os.path as osp

import pytest
from sttm_study.protocol import Protocol, ProtocolError, load_protocol

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The frontier's protocol is another tool's plan (frontier.py's Protocol).
PATHS = [
    p for p in sorted(
        glob.glob(osp.join(ROOT, 'configs', 'synthetic', '*', 'protocol.py')))
    if 'frontier' not in p
]
VALUES = dict(
    baseline='vit',
    primary='sttm',
    seeds=[0, 1],
    train_subset=20,
    margin=2.0,
    alpha=0.05,
    half_width=1.5)


@pytest.mark.parametrize('path', PATHS, ids=lambda p: p.split('/')[-2])
def test_every_committed_protocol_loads(path):
    protocol = load_protocol(path)
    assert protocol.seeds and protocol.baseline and protocol.primary
    if protocol.variants is not None:
        assert protocol.baseline in protocol.variants


def test_defaults_and_containers():
    protocol = Protocol.from_dict(dict(VALUES, variants=['vit', 'sttm']))
    assert protocol.seeds == (0, 1) and protocol.variants == ('vit', 'sttm')
    assert protocol.regime == 'finetune' and protocol.data_root == \
        'data/study' and protocol.pretrain_seed is None
    assert protocol.per_class_of('shifted') == 0


@pytest.mark.parametrize(
    'change, message',
    [(dict(colapse_margin=5.0), "no key 'colapse_margin'; did you mean "
      "'collapse_margin'"), (dict(regime='scrach'), "regime must be one of"),
     (dict(seeds=[]), 'seeds must be a non-empty list'),
     (dict(alpha=5), r'alpha must be in \(0, 1\)'),
     (dict(variants=['vit']), r"compares \['sttm'\], which are not in"),
     (dict(comparisons=[dict(primary='sttm', other=['vit'])]),
      'comparisons: each is dict')])
def test_a_wrong_protocol_fails_in_one_line(change, message):
    with pytest.raises(ProtocolError, match=message) as info:
        Protocol.from_dict(dict(VALUES, **change), source='p.py')
    assert str(info.value).startswith('p.py: protocol ')
    assert '\n' not in str(info.value)


def test_a_missing_key_is_named():
    values = dict(VALUES)
    del values['margin'], values['seeds']
    with pytest.raises(ProtocolError, match='protocol needs seeds, margin'):
        Protocol.from_dict(values)


def test_a_config_without_protocol(tmp_path):
    path = tmp_path / 'protocol.py'
    path.write_text('plan = dict()\n')
    with pytest.raises(ProtocolError, match='no `protocol` dict'):
        load_protocol(str(path))
