# From a fresh clone:   make train   sets up .venv and trains LeNet-5 by the default recipe
#                       make test    sets up .venv and runs the test suite (what CI runs)
# Flags for the training go in ARGS, e.g.  make train ARGS="--impl both --epochs 2".
# MNIST is read from $TORCHCONV_DATA/MNIST/raw/ (downloaded to ./data when neither it nor
# ../shared/data, beside the checkout, holds it).

PYTHON ?= python3
VENV := .venv
ARGS ?=

# The real MNIST files sit beside the checkout in this workplace (read-only; nothing is written there).
ifeq ($(TORCHCONV_DATA),)
ifneq ($(wildcard ../shared/data/MNIST/raw),)
export TORCHCONV_DATA := $(abspath ../shared/data)
endif
endif

.PHONY: train test

train: $(VENV)/.installed-train
	$(VENV)/bin/python scripts/train_lenet.py $(ARGS)

test: $(VENV)/.installed-test
	$(VENV)/bin/python -m pytest -q

# pip runs again when setup.py changes; the stamp files record each set of extras installed.
$(VENV)/.installed-%: setup.py | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -q -e ".[$*]"
	touch $@

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
