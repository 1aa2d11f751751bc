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

.PHONY: demo test lint bench ffmpeg chromium venv clean

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

# Headless Chromium for the test that opens the HTML motion player as a person would.
chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing chromium (Debian)"; \
	  SUDO=$$(command -v sudo || true); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null \
	  || echo "chromium could not be installed: the browser tests will be skipped"; }

MOCAP ?= $(SHARED)/assets/mocap
DEMO_OUT ?= out/demo
DEMO_STEPS ?= 300

# The pipeline end to end (ingest, extract, clips, lifter once, lift, release, train, generate);
# it prints the path of its report (counts, metrics, overlay pictures, generated animations).
demo: venv ffmpeg
	$(BIN)/videomdm run "$(VIDEOS)" --collection $(COLLECTION) --mocap "$(MOCAP)" \
	  --train --steps $(DEMO_STEPS) --out $(DEMO_OUT)
	$(BIN)/videomdm tables
	$(BIN)/videomdm releases
	$(BIN)/videomdm sql "SELECT v.filename, k.video_id, count(DISTINCT k.track_id) AS tracks, \
	  count(*) AS rows, round(avg(list_avg(k.kp_score)), 3) AS mean_kp_score \
	  FROM keypoints k JOIN videos v USING (video_id) GROUP BY ALL ORDER BY 1"
	$(BIN)/videomdm sql "SELECT c.clip_id, v.filename, c.track_id, c.n_frames, \
	  round(c.mean_kp_score::DOUBLE, 2) AS score, m.lifter_id FROM clips c JOIN videos v USING (video_id) \
	  LEFT JOIN motions m USING (clip_id) ORDER BY 2, 3"
	@echo "report: $(DEMO_OUT)/report.md"

test: venv ffmpeg chromium
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: venv
	$(BIN)/ruff check videomdm tests benchmarks
	$(BIN)/mypy videomdm

bench: venv
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/fixed_cost.py

clean:
	rm -rf lake out .pytest_cache
