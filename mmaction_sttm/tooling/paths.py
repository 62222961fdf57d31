"""The files and folders a config or a command line names: checked before
anything is built."""
import os.path as osp
from typing import Any, Iterator, Sequence

from .cli import ToolError


def _is_remote(path: str) -> bool:
    # s3://, http(s)://, open-mmlab://, torchvision:// ...: MMEngine's file
    # backends resolve them; only local files can be checked up front.
    return '://' in path


def require_file(path: str, what: str) -> None:
    """Raise :class:`ToolError` unless ``path`` is an existing local file
    (remote URIs pass unchecked).

    Args:
        path (str): The path given by the user.
        what (str): What it is, for the message (``'config'``,
            ``'checkpoint'``, ``'--resume checkpoint'`` ...).
    """
    if _is_remote(path):
        return
    if osp.isdir(path):
        raise ToolError(f'{what} {path} is a folder, not a file')
    if not osp.isfile(path):
        raise ToolError(f'{what} {path} does not exist')


def require_dir(path: str, what: str) -> None:
    """Raise :class:`ToolError` unless ``path`` is an existing local folder
    (remote URIs pass unchecked).

    Args:
        path (str): The path given by the user.
        what (str): What it is, for the message.
    """
    if not _is_remote(path) and not osp.isdir(path):
        raise ToolError(f'{what} {path} does not exist')


def _datasets(dataset: Any) -> Iterator[Any]:
    """The dataset configs in ``dataset``, through MMEngine's wrappers
    (``RepeatDataset``, ``ClassBalancedDataset``, ``ConcatDataset``)."""
    if not isinstance(dataset, dict):
        return
    if isinstance(dataset.get('datasets'), (list, tuple)):
        for inner in dataset['datasets']:
            yield from _datasets(inner)
    elif isinstance(dataset.get('dataset'), dict):
        yield from _datasets(dataset['dataset'])
    else:
        yield dataset


def _joined(data_root: str, path: str) -> str:
    # MMEngine's BaseDataset joins relative paths to data_root the same way.
    if data_root and not osp.isabs(path) and not _is_remote(path):
        return osp.join(data_root, path)
    return path


def check_data_paths(cfg: Any, loaders: Sequence[str]) -> None:
    """Check the annotation files and video folders a run will read.

    Args:
        cfg (Config): The full config.
        loaders (Sequence[str]): Which dataloaders the tool uses, e.g.
            ``['train', 'val']`` or ``['test']``; one missing from the config
            (``--no-validate``) is skipped.
    """
    for loader in loaders:
        loader_cfg = cfg.get(f'{loader}_dataloader')
        if not loader_cfg:
            continue
        for dataset in _datasets(loader_cfg.get('dataset')):
            data_root = dataset.get('data_root') or ''
            ann_file = dataset.get('ann_file')
            if isinstance(ann_file, str) and ann_file:
                require_file(
                    _joined(data_root, ann_file),
                    f'{loader}_dataloader.dataset.ann_file')
            prefix = dataset.get('data_prefix')
            if isinstance(prefix, dict):
                for key, folder in prefix.items():
                    if isinstance(folder, str) and folder:
                        require_dir(
                            _joined(data_root, folder),
                            f'{loader}_dataloader.dataset.data_prefix.{key}')


# The converter's --dst for each backbone type that loads converted weights:
# a family's backbone and the MMAction2 backbone it stands in for.
