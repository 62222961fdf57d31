# Two commands for a newcomer: `make demo` and `make test`. Each one creates
# the virtual environment and installs the project first when needed, with
# the exact versions of constraints.txt (setup.py itself declares ranges, so
# that `pip install -e .` also joins an existing MMAction2 environment).
# `make test-low` and `make test-high` check the low and the high end of
# setup.py's ranges (constraints-low.txt, constraints-high.txt) in .venv-low
# and .venv-high, on a quick subset of the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOW_VENV ?= .venv-low
LOW_STAMP := $(LOW_VENV)/.installed
HIGH_VENV ?= .venv-high
HIGH_STAMP := $(HIGH_VENV)/.installed
# A quick subset for both ends: installing leaves torch / mmcv / MMAction2
# alone, the stack fixes, checkpoint loading, an import that changes
# nothing, the merging models, and real distributed train / test / resume
# runs.
LOW_TESTS ?= tests/test_install.py tests/test_compat.py \
	tests/test_checkpoint_safety.py tests/test_import.py \
	tests/models/mergers/test_sttm.py tests/models/reducers/test_rlt.py \
	tests/tools/test_train_test.py tests/docs/test_readme_quick_start.py
HIGH_TESTS ?= $(LOW_TESTS) tests/engine/test_fsdp_units.py
# pytest-xdist workers (one per core of the 2-core machines this suite is
# sized for; `make test TEST_WORKERS=0` runs in one process). A test file
# stays on one worker, so its module fixtures are built once.
TEST_WORKERS ?= 2
PYTEST := -m pytest -n $(TEST_WORKERS) --dist loadfile

# flake8, isort and yapf with MMAction2's settings (setup.cfg). Configs are
# data: flake8 and isort check them, yapf leaves their layout alone.
LINT_PATHS := mmaction_sttm tools tests setup.py

.PHONY: install demo test test-fsdp lint test-low test-high clean

install: $(STAMP)

$(STAMP): setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade 'pip>=24' 'setuptools<82' wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[tests,lite,lint]'
	touch $(STAMP)

demo: install
	PATH=$(abspath $(BIN)):$$PATH bash tools/demo.sh

# The multi-process FSDP runs (marked `fsdp`, about 2.5 minutes) are
# `make test-fsdp`; CI runs both.
test: install
	$(BIN)/python $(PYTEST) -m 'not fsdp' tests

test-fsdp: install
	$(BIN)/python $(PYTEST) -m fsdp tests

lint: install
	$(BIN)/flake8 $(LINT_PATHS) configs
	$(BIN)/isort --check-only --diff $(LINT_PATHS) configs
	$(BIN)/yapf -r -d -p $(LINT_PATHS)

$(LOW_STAMP): setup.py constraints-low.txt
	$(PYTHON) -m venv $(LOW_VENV)
	$(LOW_VENV)/bin/python -m pip install -q --upgrade 'pip>=24' 'setuptools<82' wheel
	$(LOW_VENV)/bin/python -m pip install -q -c constraints-low.txt -e '.[tests,lite]'
	touch $(LOW_STAMP)

test-low: $(LOW_STAMP)
	$(LOW_VENV)/bin/python $(PYTEST) -q $(LOW_TESTS)

$(HIGH_STAMP): setup.py constraints-high.txt
	$(PYTHON) -m venv $(HIGH_VENV)
	$(HIGH_VENV)/bin/python -m pip install -q --upgrade 'pip>=24' 'setuptools<82' wheel
	$(HIGH_VENV)/bin/python -m pip install -q -c constraints-high.txt -e '.[tests,lite]'
	touch $(HIGH_STAMP)

test-high: $(HIGH_STAMP)
	$(HIGH_VENV)/bin/python $(PYTEST) -q $(HIGH_TESTS)

clean:
	rm -rf $(VENV) $(LOW_VENV) $(HIGH_VENV) work_dirs data/synthetic_motion data/study
