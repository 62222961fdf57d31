"""The commands the docs mark runnable run and succeed.

A fenced block right after an HTML comment is checked:

- ``<!-- runnable -->`` before a ``shell`` block: every command in it
  (``python tools/...``, continuation lines joined) is run from the
  repository root and must exit 0;
- ``<!-- runnable: config -->`` before a ``python`` block holding a config:
  the config is written to a file (``path/to/mmaction2/configs/`` pointing
  at the configs of the installed MMAction2) and its model is built
  without reading weights files.

Mark only what runs in seconds on a CPU without data or checkpoints
(``--help``, ``get_flops.py``, config builds).
"""
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
from glob import glob
from typing import List, NamedTuple

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MARKED = re.compile(
    r'^<!--\s*runnable(?::\s*(?P<kind>\w+))?\s*-->[ \t]*\n'
    r'```(?P<lang>\w*)[^\n]*\n(?P<body>.*?)^```', re.M | re.S)
# Where the off-the-shelf configs put the user's MMAction2 checkout.
MMACTION2_CONFIGS = 'path/to/mmaction2/configs/'


class Block(NamedTuple):
    page: str  # relative to the repository
    line: int
    kind: str  # 'shell' or 'config'
    body: str

    @property
    def id(self) -> str:
        return f'{self.page}:{self.line}'


def doc_pages() -> List[str]:
    """README.md, docs/**/*.md and configs/**/README.md."""
    pages = [osp.join(ROOT, 'README.md')]
    pages += glob(osp.join(ROOT, 'docs', '**', '*.md'), recursive=True)
    pages += glob(osp.join(ROOT, 'configs', '**', 'README.md'), recursive=True)
    return sorted(pages)


def marked_blocks(text: str, page: str) -> List[Block]:
    """The blocks of a page that follow a ``runnable`` marker."""
    blocks = []
    for match in MARKED.finditer(text):
        kind = match['kind'] or 'shell'
        if kind not in ('shell', 'config'):
            raise ValueError(f'{page}: unknown marker runnable: {kind}')
        line = text.count('\n', 0, match.start()) + 1
        blocks.append(Block(page, line, kind, match['body']))
    return blocks


def shell_commands(body: str) -> List[List[str]]:
    """The commands of a shell block, as argument lists."""
    commands = []
    for line in body.replace('\\\n', ' ').splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        argv = shlex.split(line, comments=True)
        if argv[:1] != ['python']:
            raise ValueError(f'a runnable block runs python commands only, '
                             f'got: {line}')
        commands.append([sys.executable, *argv[1:]])
    return commands


def run_command(argv: List[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def build_config(body: str, folder: str) -> None:
    """Write a config block to ``folder`` and build its model."""
    import mmaction
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmaction_sttm.registry import MODELS
    from mmaction_sttm.tooling import disable_pretrained
    configs = osp.join(osp.dirname(mmaction.__file__), '.mim', 'configs')
    path = osp.join(folder, 'config.py')
    with open(path, 'w') as f:
        f.write(body.replace(MMACTION2_CONFIGS, configs + '/'))
    cfg = Config.fromfile(path)
    disable_pretrained(cfg.model)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    MODELS.build(cfg.model)


BLOCKS = [
    block for page in doc_pages()
    for block in marked_blocks(open(page).read(), osp.relpath(page, ROOT))
]


def test_the_docs_mark_commands():
    """The marks are there: the GFLOPs commands, --help, the off-the-shelf
    configs and the ToMe command of mergers.md."""
    pages = {block.page for block in BLOCKS}
    assert {
        'docs/getting_started.md', 'docs/mergers.md', 'docs/off_the_shelf.md'
    } <= pages
    assert sum(b.kind == 'config' for b in BLOCKS) >= 2
    commands = [
        ' '.join(c) for b in BLOCKS if b.kind == 'shell'
        for c in shell_commands(b.body)
    ]
    assert any('merger.type=ToMe' in c for c in commands)
    assert any('--help' in c for c in commands)


@pytest.mark.parametrize('block', BLOCKS, ids=[b.id for b in BLOCKS])
def test_marked_block_runs(block, tmp_path):
    if block.kind == 'config':
        build_config(block.body, str(tmp_path))
        return
    for argv in shell_commands(block.body):
        proc = run_command(argv)
        assert proc.returncode == 0, (
            f'{block.id}: {" ".join(argv[1:])} exited with '
            f'{proc.returncode}:\n{proc.stderr[-2000:]}')


# The checker must be able to fail: the ToMe command mergers.md had (issue
# 24) fails on an STTM config (STTM's keys are not ToMe's), and the marker
# finds what follows it.
OLD_TOME = """\
<!-- runnable -->
```shell
python tools/analysis_tools/get_flops.py configs/sttm/sttm_vit-base-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py --cfg-options model.backbone.merger.type=ToMe model.backbone.merger.ratio=0.45
```
"""  # noqa: E501


def test_the_check_fails_on_the_old_tome_command():
    (block, ) = marked_blocks(OLD_TOME, 'old.md')
    (argv, ) = shell_commands(block.body)
    proc = run_command(argv)
    assert proc.returncode != 0
    assert "unknown key 'alpha' for ToMe" in proc.stderr


def test_marker_parsing():
    text = ('x\n<!-- runnable -->\n```shell\npython a.py \\\n  --b c  # d\n'
            '\n# note\npython e.py\n```\n\n```shell\npython f.py\n```\n'
            '<!-- runnable: config -->\n```python\n_base_ = "x"\n```\n')
    blocks = marked_blocks(text, 'p.md')
    assert [(b.line, b.kind) for b in blocks] == [(2, 'shell'), (14, 'config')]
    assert [c[1:]
            for c in shell_commands(blocks[0].body)] == [['a.py', '--b', 'c'],
                                                         ['e.py']]
    assert blocks[1].body == '_base_ = "x"\n'
    with pytest.raises(ValueError, match='python commands only'):
        shell_commands('bash tools/dist_train.sh x 8\n')
