# Everything a fresh machine needs: `make demo` and `make test` create .venv and install.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cfgsched-installed
# Ultralytics needs PyPI's CUDA torch (for torchvision): its own venv, outside the checkout.
ULTRA_VENV ?= $(HOME)/.cache/cfgsched/ultralytics-venv

.PHONY: install ultralytics-env demo test lint typecheck bench fuzz clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# CPU build of torch, served locally; an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

install: $(STAMP)

ultralytics-env:
	ULTRA_VENV=$(ULTRA_VENV) PYTHON=$(PYTHON) sh scripts/ultralytics-env.sh

demo: $(STAMP)
	# translate the bundled yolov4-style cfg, then prove the module against darknet's formula
	$(VENV)/bin/cfgsched convert sample_cfgs/yolov4.cfg -o lr_schedule.py --force
	head -n 20 lr_schedule.py
	$(VENV)/bin/cfgsched diff sample_cfgs/yolov4.cfg --module lr_schedule.py
	$(VENV)/bin/cfgsched explain sample_cfgs/yolov4.cfg --at 1,1000,400000,500500

lint: $(STAMP)
	$(VENV)/bin/ruff check cfgsched tests
	$(VENV)/bin/ruff format --check cfgsched tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck ultralytics-env
	CFGSCHED_ULTRALYTICS_PYTHON=$(ULTRA_VENV)/bin/python $(VENV)/bin/python -m pytest

bench: $(STAMP)
	# byte-compile as a wheel install would (start-up is measured like a user's install)
	$(VENV)/bin/python -m compileall -q cfgsched
	$(VENV)/bin/python -m tests.benchmarks.run

fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz CFGSCHED_FUZZ_EXAMPLES=1000 $(VENV)/bin/python -m pytest tests/test_fuzz.py -q

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
