# The two commands of the README, each doing its own set-up on a fresh machine:
#   make demo   virtualenv, release build, the demo on the bundled examples
#   make test   the same set-up (and Debian's chromium for the report test), then lint,
#               cargo test and pytest
# Other targets: make bench (benchmarks, README table), make lint, make clean.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEPS   := $(VENV)/.deps-installed
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test build lint browser bench bench-table clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(DEPS): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.9,<2" "rich>=13" "pytest>=8" "hypothesis>=6.100" \
	    "numpy>=1.26" "pytest-benchmark>=4" "mypy>=1.10" "ruff>=0.6" "matplotlib>=3.8" \
	    "pyarrow>=14" "ray[data]>=2.9" "dask[dataframe]>=2024.1" "distributed>=2024.1"
	touch $@

# Release build of the extension, installed editable into the virtualenv.
build: $(DEPS)
	maturin develop --release --quiet

demo: build
	pmengine demo

lint: $(DEPS)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	ruff check python tests benches
	ruff format --check python tests benches

# The HTML report is rendered by a real headless browser in the tests: Debian's chromium.
browser:
	@command -v chromium >/dev/null || { \
	    if [ "$$(id -u)" = 0 ]; then \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	    else echo "chromium is not installed (apt-get install chromium): the browser test will be skipped"; fi; }

test: build lint browser
	cargo test -p pmengine-core --quiet
	$(PY) -m pytest tests -q -p no:cacheprovider

# Benchmarks (Rust, NumPy and the reference in one run) and the README tables.
bench: build
	mkdir -p .benchmarks
	$(PY) -m pytest benches --benchmark-only --benchmark-columns=min,median,mean,ops,rounds \
	    --benchmark-json=.benchmarks/latest.json -q -p no:cacheprovider
	$(PY) benches/table.py .benchmarks/latest.json --readme README.md
	$(PY) benches/latency.py --readme README.md
	$(PY) benches/sweep.py --readme README.md
	$(PY) benches/batch.py --readme README.md
	cargo bench -p pmengine-core --bench kernels

clean:
	rm -rf $(VENV) target .pytest_cache .benchmarks
