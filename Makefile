# Everything a fresh machine needs: `make demo` and `make test` create .venv and install.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Two stamps: the demo needs the runtime dependencies only; lint, typecheck, test, bench and
# fuzz add the dev extra (pytest, ruff, mypy, MMEngine, Lightning, TensorBoard, ...).
RUNTIME_STAMP := $(VENV)/.cfgsched-runtime
DEV_STAMP := $(VENV)/.cfgsched-dev
# Which torch goes into .venv. By default the pinned release from pip's configured index
# (here that is the CPU build). On a machine whose index is PyPI, Linux gets the CUDA build
# (GBs of wheels); PyTorch's documented CPU-only route is its own wheel index:
#     make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_REQ ?= torch==2.13.0
TORCH_INDEX ?=
# Ultralytics needs PyPI's CUDA torch (for torchvision): its own venv, outside the checkout.
ULTRA_VENV ?= $(HOME)/.cache/cfgsched/ultralytics-venv

.PHONY: install install-dev ultralytics-env demo test lint typecheck bench fuzz clean

$(RUNTIME_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, from TORCH_INDEX when given; the package then finds it installed
	$(PY) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) '$(TORCH_REQ)'
	$(PY) -m pip install -q -e . --config-settings editable_mode=compat
	touch $(RUNTIME_STAMP)

$(DEV_STAMP): $(RUNTIME_STAMP)
	$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $(DEV_STAMP)

install: $(RUNTIME_STAMP)

install-dev: $(DEV_STAMP)

ultralytics-env:
	ULTRA_VENV=$(ULTRA_VENV) PYTHON=$(PYTHON) sh scripts/ultralytics-env.sh

demo: $(RUNTIME_STAMP)
	# translate the bundled yolov4-style cfg, then prove the module against darknet's formula
	$(VENV)/bin/cfgsched convert sample_cfgs/yolov4.cfg -o lr_schedule.py --force
	head -n 20 lr_schedule.py
	$(VENV)/bin/cfgsched diff sample_cfgs/yolov4.cfg --module lr_schedule.py
	$(VENV)/bin/cfgsched explain sample_cfgs/yolov4.cfg --at 1,1000,400000,500500

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check cfgsched tests
	$(VENV)/bin/ruff format --check cfgsched tests

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy

test: $(DEV_STAMP) lint typecheck ultralytics-env
	CFGSCHED_ULTRALYTICS_PYTHON=$(ULTRA_VENV)/bin/python $(VENV)/bin/python -m pytest

bench: $(DEV_STAMP)
	# byte-compile as a wheel install would (start-up is measured like a user's install)
	$(VENV)/bin/python -m compileall -q cfgsched
	$(VENV)/bin/python -m tests.benchmarks.run

fuzz: $(DEV_STAMP)
	HYPOTHESIS_PROFILE=fuzz CFGSCHED_FUZZ_EXAMPLES=1000 $(VENV)/bin/python -m pytest tests/test_fuzz.py -q

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
