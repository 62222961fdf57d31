"""The recipe of docs/visualization.md is built as written: its configs
give the token counts and the checkpoint names that the page states."""
import os.path as osp
import re

from mmaction.utils import register_all_modules
from mmengine.config import Config

import mmaction_sttm  # noqa: F401
from mmaction_sttm.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGE = osp.join(ROOT, 'docs', 'visualization.md')
HEREDOC = re.compile(
    r"cat > work_dirs/vis_docs/(?P<name>[\w.-]+) <<'EOF'\n"
    r'(?P<body>.*?)\nEOF', re.S)


def test_recipe_configs_give_the_stated_counts(tmp_path):
    register_all_modules()
    text = open(PAGE).read()
    configs = {m['name']: m['body'] for m in HEREDOC.finditer(text)}
    assert len(configs) == 2, configs.keys()
    # The recipe writes into work_dirs/vis_docs/ of the repository; here
    # the same files, with the repository's configs found from tmp.
    for name, body in configs.items():
        body = body.replace("'../../configs/",
                            repr(osp.join(ROOT, 'configs', ''))[:-1])
        (tmp_path / name).write_text(body)
    merged = Config.fromfile(
        str(tmp_path / 'sttm_spacetime-vit-tiny_synthetic.py'))
    model = MODELS.build(merged.model)
    counts = model.backbone.merge_schedule.counts
    stated = re.findall(
        r'after block \d \((?:spatial|spatiotemporal)\): '
        r'(\d+) tokens', text)
    assert tuple(int(c) for c in stated) == counts == (64, 32)
    # The model's frame size is the pipeline's crop.
    assert merged.model.backbone.img_size == merged.crop_size
    # The checkpoints the page names are the ones the base config writes.
    epochs = merged.train_cfg.max_epochs
    assert f'epoch_{epochs}.pth' in text
    assert not re.search(r'vis_docs/\w+/epoch_(?!%d\b)\d+\.pth' % epochs, text)
    baseline = Config.fromfile(
        str(tmp_path / 'spacetime-vit-tiny_synthetic.py'))
    assert MODELS.build(baseline.model).backbone.merge_schedule is None
