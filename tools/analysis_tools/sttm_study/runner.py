"""Running a study's variants through the project's own tools.

Each run is a ``tools/train.py`` subprocess (pre-training once per seed, then
each trained variant, validating on the dev split every ``val_interval``
epochs) followed by ``tools/test.py`` on each evaluation split (1 clip x 3
crops). What a run leaves behind for the record is a small JSON
(:func:`StudyRunner.run`): its metrics on train / dev / test, its per-video
predictions on the held-out splits (:func:`compact_predictions`), its
learning curve, its commit and its commands, never its checkpoint.
"""
import glob
import json
import os
import os.path as osp
import shlex
import signal
import subprocess
import sys
import time
import warnings
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from .data import StudyData
from .records import RunRecord, load_record
from .variants import Variant


def _signal_name(returncode: int) -> str:
    """``SIGKILL`` for a subprocess return code of -9."""
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f'signal {-returncode}'


def call_tool(cmd: List[str], log: str, cwd: str, threads: int) -> str:
    """Run a tool in ``cwd``, keep its output in ``log``; raise with the
    log's tail. Returns the command as recorded (``python`` for the
    interpreter).

    A tool killed by a signal (the kernel's OOM killer, a crash in a native
    library) is run once more, after a warning; its first log is kept as
    ``log + '.1'``. Python's fault handler is on, so a crash leaves every
    thread's stack in the log.

    Args:
        cmd (list[str]): The command, ``sys.executable`` first.
        log (str): Where its output goes.
        cwd (str): Where it runs (the repository root).
        threads (int): ``OMP_NUM_THREADS`` of the tool.

    Returns:
        str: The command as recorded.
    """
    # glibc writes its fatal messages (heap corruption, failed asserts)
    # to the terminal, not to stderr, unless LIBC_FATAL_STDERR_ is set;
    # a tool aborted on 2026-12-04 with nothing in its log.
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        PYTHONFAULTHANDLER='1',
        LIBC_FATAL_STDERR_='1',
        TORCH_SHOW_CPP_STACKTRACES='1')
    for attempt in (1, 2):
        with open(log, 'w') as f:
            proc = subprocess.run(
                cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
        if proc.returncode >= 0 or attempt == 2:
            break
        os.replace(log, log + '.1')
        warnings.warn(f'{osp.basename(cmd[1])} was killed by '
                      f'{_signal_name(proc.returncode)}; running it once '
                      f'more (first log: {log}.1)')
    if proc.returncode:
        with open(log) as f:
            tail = ''.join(f.readlines()[-20:])
        how = (f'killed by {_signal_name(proc.returncode)}'
               if proc.returncode < 0 else f'exit {proc.returncode}')
        raise RuntimeError(f'{shlex.join(cmd)} failed ({how}; {log}):\n{tail}')
    return shlex.join(['python'] + cmd[1:])


def git_state(root: str, ignore: Sequence[str] = ()) -> Dict[str, object]:
    """The checked-out commit and whether the tree differs from it.

    Args:
        root (str): The repository root.
        ignore (Sequence[str]): Paths (relative to ``root``) whose changes
            do not count, e.g. the folder the runs write their results to.

    Returns:
        dict: ``commit`` (full hash, or ``'unknown'`` outside git) and
        ``dirty`` (changed or untracked files, ignored ones aside).
    """

    def git(*cmd: str) -> str:
        return subprocess.run(['git', *cmd],
                              cwd=root,
                              capture_output=True,
                              text=True).stdout.strip()

    excludes = [f':(exclude){path}' for path in ignore]
    status = git('status', '--porcelain', '--', '.', *excludes)
    return dict(
        commit=git('rev-parse', 'HEAD') or 'unknown', dirty=bool(status))


def machine_state() -> Dict[str, str]:
    """What a run's floating-point results depend on besides the code and
    the seed: the CPU model and its widest vector instructions (CPU kernels
    round differently on different ones), and the torch build.

    Returns:
        dict: ``cpu`` (model name), ``isa`` (``'avx512'``, ``'avx2'`` or
        ``'other'``), ``torch`` and ``python`` (versions).
    """
    import platform

    import torch
    cpu, flags = platform.processor() or 'unknown', set()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() == 'model name':
                    cpu = value.strip()
                elif key.strip() == 'flags':
                    flags = set(value.split())
                    break
    except OSError:
        pass
    isa = ('avx512'
           if 'avx512f' in flags else 'avx2' if 'avx2' in flags else 'other')
    return dict(
        cpu=cpu,
        isa=isa,
        torch=torch.__version__,
        python=platform.python_version())


def read_curve(work_dir: str) -> List[Dict[str, float]]:
    """Per-epoch learning curve of a training run, from MMEngine's
    ``vis_data/scalars.json`` (its newest timestamped folder).

    Args:
        work_dir (str): The run's work dir.

    Returns:
        list[dict]: Per epoch: ``epoch``, ``train_top1`` and ``loss`` (means
        over the epoch's logged iterations; top-1 of the augmented training
        batches, in %), and ``dev_top1`` / ``dev_top5`` where the run
        validated after that epoch.
    """
    logs = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not logs:
        raise RuntimeError(f'{work_dir}: no vis_data/scalars.json')
    train = defaultdict(list)
    val = {}
    with open(logs[-1]) as f:
        for line in f:
            record = json.loads(line)
            if 'acc/top1' in record:
                val[int(record['step'])] = record
            elif 'loss' in record and 'epoch' in record:
                train[int(record['epoch'])].append(record)
    curve = []
    for epoch in sorted(set(train) | set(val)):
        point: Dict[str, float] = dict(epoch=epoch)
        if train[epoch]:
            recs = train[epoch]
            point['loss'] = round(sum(r['loss'] for r in recs) / len(recs), 4)
            if 'top1_acc' in recs[0]:
                point['train_top1'] = round(
                    100 * sum(r['top1_acc'] for r in recs) / len(recs), 2)
        if epoch in val:
            point['dev_top1'] = round(100 * val[epoch]['acc/top1'], 2)
            point['dev_top5'] = round(100 * val[epoch]['acc/top5'], 2)
        curve.append(point)
    return curve


#: Splits whose per-video predictions a record keeps (the held-out ones:
#: video-level bootstrap intervals and McNemar tests are made on them).
PREDICTION_SPLITS = ('test', 'shifted')


def _item(sample: Dict, *names: str):
    """The first of ``names`` in a dumped data sample, as a plain value
    (MMAction2 1.1 nests labels and scores in ``LabelData`` dicts under
    ``gt_labels`` / ``pred_scores``; 1.2 stores ``gt_label`` /
    ``pred_score`` directly)."""
    for name in names:
        if name in sample:
            value = sample[name]
            if isinstance(value, dict):
                value = value['item']
            return value
    raise KeyError(f'none of {names} in the dumped predictions')


def compact_predictions(pkl: str) -> Dict[str, object]:
    """Per-video predictions of a ``tools/test.py --dump`` pickle, compact.

    Args:
        pkl (str): The dump: one data sample per video, in the annotation
            list's order.

    Returns:
        dict: ``label`` and ``pred`` (one class index per video, as
        space-separated integers) and ``p_true`` (the probability given to
        the true class, in thousandths, space-separated): a few KB for
        2000 videos.
    """
    import pickle

    with open(pkl, 'rb') as f:
        return compact_samples(pickle.load(f))


def compact_samples(samples: Sequence[Dict]) -> Dict[str, object]:
    """:func:`compact_predictions` of data samples as dicts (a dump's
    entries, or ``ActionDataSample.to_dict()``), in order.

    Args:
        samples (Sequence[dict]): One per video.

    Returns:
        dict: ``label``, ``pred`` and ``p_true`` as in
        :func:`compact_predictions`.
    """
    labels, preds, p_true = [], [], []
    for sample in samples:
        scores = _item(sample, 'pred_score', 'pred_scores')
        label = int(_item(sample, 'gt_label', 'gt_labels').reshape(-1)[0])
        scores = scores.float().reshape(-1)
        labels.append(label)
        preds.append(int(scores.argmax()))
        p_true.append(int(round(1000 * float(scores[label]))))
    join = ' '.join
    return dict(
        label=join(map(str, labels)),
        pred=join(map(str, preds)),
        p_true=join(map(str, p_true)))


class StudyRunner:
    """Trains and tests the variants of one study.

    Args:
        root (str): The repository root (tools are run from there).
        config_dir (str): The study's config folder, relative to ``root``.
        data (StudyData): Where the splits are.
        work_dir (str): Where runs keep their work dirs.
        jobs (int): Runs at a time; each gets ``cores / jobs`` threads.
            Defaults to 1.
        eval_splits (Sequence[str]): Splits each run is tested on after
            training, besides the train subset: ``'dev'``, ``'test'``
            and/or ``'shifted'``. Defaults to ``('dev', )``.
        resume (bool): Reuse runs that already have a result.
            Defaults to False.
        cfg_options (dict, optional): Options added to every run (e.g.
            ``train_cfg.max_epochs=1`` for a smoke run).
        commit (dict, optional): :func:`git_state` to record in each
            result. Defaults to the state now.
        pretrain_seed (int, optional): Fine-tune every seed from the
            backbone pre-trained with this seed (one shared checkpoint, as
            users share one ImageNet checkpoint). Defaults to None: each
            seed from its own pre-training.
    """

    def __init__(self,
                 root: str,
                 config_dir: str,
                 data: StudyData,
                 work_dir: str,
                 jobs: int = 1,
                 eval_splits: Sequence[str] = ('dev', ),
                 resume: bool = False,
                 cfg_options: Optional[Dict[str, object]] = None,
                 commit: Optional[Dict[str, object]] = None,
                 pretrain_seed: Optional[int] = None) -> None:
        self.root = root
        self.config_dir = config_dir
        self.data = data
        self.work_root = work_dir
        self.threads = max(1, (os.cpu_count() or 1) // jobs)
        self.eval_splits = tuple(eval_splits)
        self.resume = resume
        self.cfg_options = dict(cfg_options or {})
        self.commit = commit or git_state(root)
        self.machine = machine_state()
        self.pretrain_seed = pretrain_seed
        self.pretrained: Dict[int, str] = {}

    # -- paths and commands ------------------------------------------------

    def work_dir(self, regime: str, name: str, seed: int) -> str:
        """The work dir of one (variant, seed)."""
        return osp.abspath(
            osp.join(self.work_root, regime, name, f'seed{seed}'))

    def _rel(self, text: str) -> str:
        """``text`` with the repository root taken out of paths, so that a
        recorded command names no machine's folders."""
        return text.replace(self.root + os.sep, '')

    def _call(self, cmd: List[str], log: str) -> str:
        """Run a tool in ``root`` (:func:`call_tool`); returns the command as
        recorded, with no machine's folders in it."""
        return self._rel(call_tool(cmd, log, self.root, self.threads))

    @staticmethod
    def _options(opts: Dict[str, object]) -> List[str]:
        return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]

    def _split_options(self,
                       loader: str,
                       split: str,
                       data: Optional[Dict[str,
                                           str]] = None) -> Dict[str, object]:
        lists = data or self.data.lists(split)
        return {
            f'{loader}.dataset.ann_file': lists['ann_file'],
            f'{loader}.dataset.data_prefix.video': lists['video']
        }

    # -- runs ----------------------------------------------------------------

    def _train(self, config: str, wd: str, seed: int,
               opts: Dict[str, object]) -> (str, str):
        cmd = [
            sys.executable, 'tools/train.py', config, '--work-dir', wd,
            '--seed',
            str(seed), '--deterministic'
        ]
        recorded = self._call(
            cmd + self._options(dict(opts, **self.cfg_options)),
            osp.join(wd, 'train.log'))
        with open(osp.join(wd, 'last_checkpoint')) as f:
            return f.read().strip(), recorded

    def _test(self, config: str, ckpt: str, wd: str, split: str,
              opts: Dict[str, object]) -> (Dict[str, object], str):
        wd = osp.join(wd, f'test_{split}')
        os.makedirs(wd, exist_ok=True)
        opts = dict(opts, **self._split_options('test_dataloader', split))
        dump = []
        if split in PREDICTION_SPLITS:
            dump = ['--dump', osp.join(wd, 'predictions.pkl')]
        recorded = self._call(
            [sys.executable, 'tools/test.py', config, ckpt, '--work-dir', wd] +
            dump + self._options(opts), osp.join(wd, 'test.log'))
        with open(osp.join(wd, 'test_metrics.json')) as f:
            metrics = json.load(f)
        result = dict(
            top1=round(100 * metrics['acc/top1'], 3),
            top5=round(100 * metrics['acc/top5'], 3))
        if dump:
            result['predictions'] = compact_predictions(dump[1])
        return result, recorded

    def pretrain(self, seed: int) -> str:
        """Pre-train the backbone of ``seed`` on the shape task (once per
        seed); return its checkpoint."""
        if seed not in self.pretrained:
            (config, ) = glob.glob(
                osp.join(self.root, self.config_dir, 'pretrain', '*.py'))
            wd = self.work_dir('pretrain', 'vit', seed)
            os.makedirs(wd, exist_ok=True)
            if self.resume and osp.exists(osp.join(wd, 'last_checkpoint')):
                with open(osp.join(wd, 'last_checkpoint')) as f:
                    self.pretrained[seed] = f.read().strip()
            else:
                shape = dict(
                    ann_file=osp.join(self.data.shape,
                                      'train_list_videos.txt'),
                    video=osp.join(self.data.shape, 'videos'))
                dev = dict(
                    shape,
                    ann_file=osp.join(self.data.shape, 'val_list_videos.txt'))
                opts = dict(
                    **self._split_options('train_dataloader', '', shape),
                    **self._split_options('val_dataloader', '', dev),
                    **self._split_options('test_dataloader', '', dev))
                self.pretrained[seed], _ = self._train(
                    osp.relpath(config, self.root), wd, seed, opts)
        return self.pretrained[seed]

    def run(self,
            variant: Variant,
            seed: int,
            source: Optional[str] = None,
            splits: Optional[Sequence[str]] = None) -> RunRecord:
        """Train (unless off the shelf) and test one (variant, seed).

        Args:
            variant (Variant): What to run.
            seed (int): Its seed (also the seed of its pre-trained backbone
                and, off the shelf, of its fine-tuned source).
            source (str, optional): Off the shelf: the checkpoint to test.
                Defaults to the last checkpoint of ``variant.source``'s run
                of the same seed.
            splits (Sequence[str], optional): The evaluation splits of
                this run. Defaults to the runner's ``eval_splits``.

        Returns:
            RunRecord: The run's record (``metrics``: ``train`` on the
            train subset, and each evaluation split).
        """
        wd = self.work_dir(variant.regime, variant.name, seed)
        os.makedirs(wd, exist_ok=True)
        done = osp.join(wd, 'study_result.json')
        if self.resume and osp.exists(done):
            return load_record(done)
        start = time.time()
        opts: Dict[str, object] = {}
        commands = []
        curve: List[Dict[str, float]] = []
        if variant.regime == 'ots':
            if source is None:
                with open(
                        osp.join(
                            self.work_dir('finetune', variant.source, seed),
                            'last_checkpoint')) as f:
                    source = f.read().strip()
            ckpt = source
        else:
            if variant.regime == 'finetune':
                opts['model.backbone.init_cfg.checkpoint'] = self.pretrain(
                    seed if self.pretrain_seed is None else self.pretrain_seed)
            train_opts = dict(
                opts, **self._split_options('train_dataloader', 'train'),
                **self._split_options('val_dataloader', 'dev'),
                **self._split_options('test_dataloader', 'dev'))
            ckpt, cmd = self._train(variant.config, wd, seed, train_opts)
            commands.append(cmd)
            curve = read_curve(wd)
        metrics = {}
        splits = self.eval_splits if splits is None else tuple(splits)
        for split in ('train_subset', ) + splits:
            metrics['train' if split == 'train_subset' else split], cmd = \
                self._test(variant.config, ckpt, wd, split, opts)
            commands.append(cmd)
        result = RunRecord(
            variant=variant.name,
            regime=variant.regime,
            seed=seed,
            config=variant.config,
            commit=self.commit['commit'],
            dirty=self.commit['dirty'],
            machine=dict(self.machine, threads=self.threads),
            commands=[self._rel(c) for c in commands],
            metrics=metrics,
            curve=curve,
            seconds=round(time.time() - start, 1))
        result.save(done)
        shown = ', '.join(f'{k} {v["top1"]:.1f}' for k, v in metrics.items())
        print(
            f'{variant.regime}/{variant.name} seed {seed}: top-1 {shown} '
            f'({result.seconds:.0f} s)',
            flush=True)
        return result
