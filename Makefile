# The two commands of the README, each doing its own set-up on a fresh machine:
#   make demo   virtualenv, release build with the command line's extra (cli), the demo
#   make test   the same with the test and distributed extras (and Debian's chromium for
#               the report test), lint, the abi3 wheel installed without Rust and the
#               README's tour run from it, cargo test and pytest
# Other targets: make bench (benchmarks, README table), make fuzz (docs/FUZZING.md),
# make lint, make wheel-test, make clean.
#
# Python dependencies are declared once, in pyproject.toml: the build tool in
# [build-system] requires, everything else as extras. `maturin develop -E EXTRAS`
# builds the extension into the virtualenv (editable: python/ is imported in place)
# and installs those extras with it. `pip install -e '.[EXTRAS]'` would do the same
# through an isolated build environment that downloads maturin again on every run.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TOOLS  := $(VENV)/.build-tools
EXTRAS ?= cli
WHEEL_VENV ?= target/wheel-venv
WHEEL_FLAGS ?= --release

empty :=
space := $(empty) $(empty)
# The PATH a user without Rust has: this PATH without ~/.cargo/bin (and without the venv).
NO_RUST_PATH := $(subst $(space),:,$(filter-out %/.cargo/bin $(abspath $(VENV))/bin,$(subst :, ,$(PATH))))
BUILD_REQUIRES = $(shell $(PYTHON) -c 'import tomllib; print(*map(repr, tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')

export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test build lint browser wheel-test bench bench-table fuzz clean

$(PY):
	@echo "== creating the virtualenv $(VENV)"
	$(PYTHON) -m venv $(VENV)

$(TOOLS): pyproject.toml | $(PY)
	@echo "== installing pip and the build tool into $(VENV): $(BUILD_REQUIRES)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(BUILD_REQUIRES)
	touch $@

# Release build of the extension, installed editable with pmengine[$(EXTRAS)].
build: $(TOOLS)
	@echo "== building the extension in release mode (several minutes the first time)" \
	    "and installing pmengine[$(EXTRAS)]"
	maturin develop --release --quiet -E $(EXTRAS)

demo: build
	pmengine demo
	@echo
	@echo "pmengine is installed in $(VENV). To have the pmengine command in your shell:"
	@echo "    . $(VENV)/bin/activate        (then: pmengine --help)"

lint: EXTRAS = test
lint: build
	@echo "== lint: cargo fmt, clippy, ruff"
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	ruff check python tests benches fuzz
	ruff format --check python tests benches fuzz

# The HTML report is rendered by a real headless browser in the tests: Debian's chromium.
browser:
	@command -v chromium >/dev/null || { \
	    if [ "$$(id -u)" = 0 ]; then \
	        echo "== installing Debian's chromium for the report's browser test"; \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	    else echo "chromium is not installed (apt-get install chromium): the browser test will be skipped"; fi; }

# What `pip install pmengine` gives a user: the abi3 wheel alone (no extra), installed
# from the file only (no index, no source build) in a fresh virtualenv whose PATH has
# no Rust; the README's five-minute tour runs from it in a folder outside the tree.
wheel-test: $(TOOLS)
	@echo "== building the abi3 wheel (maturin build $(WHEEL_FLAGS))"
	rm -rf dist
	maturin build $(WHEEL_FLAGS) --quiet --out dist
	@echo "== installing it in a fresh $(WHEEL_VENV), Rust off PATH; the README's tour from it"
	rm -rf $(WHEEL_VENV)
	env -u VIRTUAL_ENV PATH="$(NO_RUST_PATH)" sh -c '! command -v cargo >/dev/null' \
	    || echo "note: cargo is on PATH outside ~/.cargo/bin; --no-index --only-binary still forbid a build"
	env -u VIRTUAL_ENV PATH="$(NO_RUST_PATH)" $(PYTHON) -m venv $(WHEEL_VENV)
	env -u VIRTUAL_ENV PATH="$(NO_RUST_PATH)" $(WHEEL_VENV)/bin/python -m pip install --quiet \
	    --no-index --only-binary :all: dist/pmengine-*.whl
	env -u VIRTUAL_ENV PATH="$(NO_RUST_PATH)" $(WHEEL_VENV)/bin/pmengine --version
	env -u VIRTUAL_ENV PATH="$(NO_RUST_PATH)" $(WHEEL_VENV)/bin/python $(CURDIR)/tests/readme_blocks.py \
	    $(CURDIR)/README.md --section "The API in five minutes" --outside

test: EXTRAS = test,distributed
test: build lint browser wheel-test
	@echo "== cargo test"
	cargo test -p pmengine-core --quiet
	@echo "== pytest"
	$(PY) -m pytest tests -q -p no:cacheprovider

# Benchmarks (Rust, NumPy and the reference in one run) and the README tables.
bench: EXTRAS = test
bench: build
	mkdir -p .benchmarks
	$(PY) -m pytest benches --benchmark-only --benchmark-columns=min,median,mean,ops,rounds \
	    --benchmark-json=.benchmarks/latest.json -q -p no:cacheprovider
	$(PY) benches/table.py .benchmarks/latest.json --readme README.md
	$(PY) benches/latency.py --readme README.md
	$(PY) benches/sweep.py --readme README.md
	$(PY) benches/batch.py --readme README.md
	cargo bench -p pmengine-core --bench kernels

# The long fuzz pass (docs/FUZZING.md): the Python targets for FUZZ_SECONDS on every
# core, then each cargo-fuzz target of fuzz/ for FUZZ_SECONDS (nightly Rust and
# cargo-fuzz; skipped with a message without them). `make test` runs the short pass.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := portfolio_json market_json profile_toml margin
fuzz: EXTRAS = test
fuzz: build
	$(PY) fuzz/python/run.py --seconds $(FUZZ_SECONDS)
	@if ! cargo +nightly --version >/dev/null 2>&1; then \
	    echo "fuzz: no nightly Rust (rustup toolchain install nightly): cargo-fuzz targets skipped"; \
	elif ! cargo +nightly fuzz --version >/dev/null 2>&1; then \
	    echo "fuzz: no cargo-fuzz (cargo install cargo-fuzz): cargo-fuzz targets skipped"; \
	else \
	    for t in $(FUZZ_TARGETS); do \
	        mkdir -p fuzz/corpus/$$t && cp fuzz/seeds/$$t/* fuzz/corpus/$$t/ 2>/dev/null; \
	        (cd fuzz && cargo +nightly fuzz run $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) \
	            -rss_limit_mb=4096 -print_final_stats=1) || exit 1; \
	    done; \
	fi

clean:
	rm -rf $(VENV) target dist .pytest_cache .benchmarks fuzz/target fuzz/corpus fuzz/artifacts
