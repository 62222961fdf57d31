"""One-line errors for the command-line tools in ``tools/``, by concern:
:mod:`.cli` (the exit status, ``--traceback``, :func:`run`),
:mod:`.configs` (loading a config, building its model), :mod:`.paths`
(files and folders it names), :mod:`.weights` (pretrained weights and the
converter command) and :mod:`.checkpoints` (whether a checkpoint fits).

A missing config, checkpoint, data or pretrained-weights path is a usage
error, not a bug: the tools report it as one line that names the path and
exit with status 2 (argparse's status for bad usage), instead of a traceback
from deep inside MMEngine. They check what they will read before building
anything, and :func:`run` turns what slips through (a ``FileNotFoundError``
raised later) into the same one line. A config that does not build (an
unknown key, a value out of range) is a usage error too: the tools build
inside :func:`config_errors`, which reports the builder's last word (the
field, the value, the closest key) as one line. ``--traceback``
(:func:`add_traceback_flag`) shows the full traceback instead.

Typical use in a tool::

    from mmaction_sttm import tooling

    def main(argv=None):
        args = parse_args(argv)  # its parser calls tooling.add_traceback_flag
        cfg = tooling.load_config(args.config)
        tooling.require_file(args.checkpoint, 'checkpoint')
        tooling.check_data_paths(cfg, ['test'])
        with tooling.config_errors():
            model = MODELS.build(cfg.model)
        ...

    if __name__ == '__main__':
        tooling.run(main)
"""

from .checkpoints import MIN_KEY_SHARE, check_checkpoint, checkpoint_match
from .cli import (EXIT_USAGE, TRACEBACK_FLAG, ToolError, add_runner_args,
                  add_traceback_flag, error_line, parse_runner_args, run)
from .configs import (build_model, build_runner, config_errors, load_config,
                      runner_checkpoint_loading)
from .paths import check_data_paths, require_dir, require_file
from .weights import check_pretrained, converter_command, disable_pretrained

__all__ = [
    'EXIT_USAGE', 'TRACEBACK_FLAG', 'ToolError', 'add_traceback_flag',
    'add_runner_args', 'parse_runner_args', 'error_line', 'run',
    'config_errors', 'build_model', 'build_runner',
    'runner_checkpoint_loading', 'load_config', 'require_file', 'require_dir',
    'check_data_paths', 'converter_command', 'check_pretrained',
    'disable_pretrained', 'MIN_KEY_SHARE', 'checkpoint_match',
    'check_checkpoint'
]
