# Two commands for a newcomer: `make demo` and `make test`. Each one creates
# the virtual environment and installs the project first when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test clean

install: $(STAMP)

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade 'pip>=24' 'setuptools<82' wheel
	$(BIN)/python -m pip install -q -e '.[tests]'
	touch $(STAMP)

demo: install
	PATH=$(abspath $(BIN)):$$PATH bash tools/demo.sh

test: install
	$(BIN)/python -m pytest tests

clean:
	rm -rf $(VENV) work_dirs data/synthetic
