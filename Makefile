# Two entry points: `make demo` and `make test`. Both create or reuse .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= $(abspath ../shared)
VIDEOS ?= $(SHARED)/assets/videos
COLLECTION ?= samples

export VIDEOMDM_WEIGHTS_DIR ?= $(SHARED)/assets/weights
export VIDEOMDM_ASSETS ?= $(SHARED)/assets
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export YOLO_OFFLINE := 1
export HF_HUB_OFFLINE := 1

.PHONY: demo test lint bench ffmpeg venv clean

# torch first, from its pinned CPU build, so the package's torch range installs nothing more.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

ffmpeg:
	@command -v ffmpeg >/dev/null || { \
	  echo "installing ffmpeg (Debian)"; \
	  SUDO=$$(command -v sudo || true); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq ffmpeg >/dev/null; }

demo: venv ffmpeg
	$(BIN)/videomdm ingest "$(VIDEOS)" --collection $(COLLECTION)
	$(BIN)/videomdm tables
	$(BIN)/videomdm sql "SELECT video_id, filename, status, round(duration_s, 1) AS seconds, fps, \
	  frame_count AS frames, width, height, codec, caption, error FROM videos ORDER BY filename"

test: venv ffmpeg
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: venv
	$(BIN)/ruff check videomdm tests benchmarks
	$(BIN)/mypy videomdm

bench: venv
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf lake out .pytest_cache
