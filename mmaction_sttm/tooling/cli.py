"""The tools' command line: usage errors as one line, the common
arguments, and the entry point that turns errors into exit status 2."""
import argparse
import os
import os.path as osp
import sys
from typing import Any, Callable, List, Optional

#: Exit status of a tool that was pointed at something that is not there.
EXIT_USAGE = 2

TRACEBACK_FLAG = '--traceback'


class ToolError(Exception):
    """A user-facing error of a tool, reported as one line (exit status 2)."""


def add_traceback_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--traceback`` to a tool's parser: errors that :func:`run`
    reports as one line are raised with their full traceback instead.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
    """
    parser.add_argument(
        TRACEBACK_FLAG,
        action='store_true',
        help='on a usage or config error, show the full traceback instead '
        'of one line')


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """Add the options that MMAction2's ``train.py`` and ``test.py`` share:
    ``--cfg-options``, ``--launcher``, ``--local-rank`` and ``--traceback``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
    """
    from mmengine.config import DictAction
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_traceback_flag(parser)


def parse_runner_args(parser: argparse.ArgumentParser,
                      argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the arguments of a parser with :func:`add_runner_args`, and
    set ``LOCAL_RANK`` from ``--local-rank`` when no launcher set it.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        argv (list[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


# MMEngine's builder prefixes each level it passes through, e.g.
# "class `Recognizer3D` in mmaction/models/recognizers/recognizer3d.py: ";
# the message under them names the field.


def error_line(error: BaseException) -> str:
    """The one-line message for an error :func:`run` reports."""
    if isinstance(error, FileNotFoundError) and error.filename:
        return f'{error.filename} does not exist'
    return ' '.join(str(error).split())


def run(main: Callable[..., Any], argv: Optional[List[str]] = None) -> None:
    """Run a tool's ``main`` and exit with its status; a :class:`ToolError`
    or a ``FileNotFoundError`` becomes one line on stderr and status 2
    (raised with its traceback when the command line has ``--traceback``).

    Args:
        main (Callable): The tool's entry point; called with ``argv`` when
            given, else without arguments. An int it returns is the status.
        argv (list[str], optional): Command line without the program name.
    """
    command_line = sys.argv[1:] if argv is None else argv
    try:
        status = main(argv) if argv is not None else main()
    except (ToolError, FileNotFoundError) as error:
        if TRACEBACK_FLAG in command_line:
            raise
        prog = osp.basename(sys.argv[0]) or 'tool'
        print(
            f'{prog}: error: {error_line(error)}', file=sys.stderr, flush=True)
        sys.exit(EXIT_USAGE)
    sys.exit(status if isinstance(status, int) else 0)
