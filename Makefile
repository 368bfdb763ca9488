# Two entry points, each working on a fresh machine with only Python 3.11:
#   make demo   extracts framegrams of the real sample videos and writes demo-output/report.html
#   make test   runs the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# vPDQ, a baseline of the search benchmarks, builds against FFmpeg's development libraries; the browser
# tests of `framegram serve` drive Debian's chromium
VPDQ_APT := pkg-config cmake libavcodec-dev libavformat-dev libavdevice-dev libavfilter-dev libavutil-dev libswscale-dev libswresample-dev

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: its CPU build is the only one that fits these machines.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,ray]'
	@if ! pkg-config --exists libavcodec 2>/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q $(VPDQ_APT) >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $(VPDQ_APT) >/dev/null; } \
	  || echo "FFmpeg's development packages could not be installed"; fi
	@if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
	  || echo "chromium could not be installed: the browser tests of framegram serve are skipped"; fi
	$(PY) -m pip install --quiet vpdq==0.2.5 || echo "vpdq was not built (it needs FFmpeg's development packages: $(VPDQ_APT)); its tests are skipped"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/framegram demo --out demo-output

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/extract.py
	$(PY) bench/shots.py
	$(PY) bench/search.py
	$(PY) bench/search_scale.py --codecs
	$(PY) bench/scale_out.py
	$(PY) bench/serve.py
	$(PY) bench/brain.py --twice
	$(PY) bench/fmri_classify.py
	$(PY) bench/classify.py
	$(PY) bench/vae.py
	$(PY) bench/vid2vid.py
	$(PY) bench/embedding.py

clean:
	rm -rf $(VENV) demo-output
