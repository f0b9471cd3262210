# Two commands do all set-up on a fresh machine:  make run  |  make test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: run test test-fast bench eval train clean-venv

$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

run: $(VENV)/.installed  ## the studio on the demo models (or real ones in checkpoints/)
	GRADIO_ANALYTICS_ENABLED=False $(PY) app.py --host $(HOST) --port $(PORT)

test: $(VENV)/.installed  ## every test, slow and browser ones included (what CI runs)
	GRADIO_ANALYTICS_ENABLED=False $(PY) -m pytest -m "slow or not slow" -q

test-fast: $(VENV)/.installed  ## the quick default suite
	GRADIO_ANALYTICS_ENABLED=False $(PY) -m pytest -q

bench: $(VENV)/.installed  ## speed ratios, see bench/RESULTS.md
	$(PY) -m bench

eval: $(VENV)/.installed  ## quality figures of the demo models, see checkpoints/*/MODEL_CARD.md
	$(PY) -m imagination.eval

clean-venv:
	rm -rf $(VENV)
