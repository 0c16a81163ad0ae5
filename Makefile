# The README's two commands. Each installs what is missing, configures, builds, runs.
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)
# ccache (installed by deps.sh) when present: paths are hashed relative to the checkout, so a
# fresh clone elsewhere (CI) reuses what an earlier build compiled.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
LAUNCHER = $(if $(shell command -v ccache 2>/dev/null),-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

.PHONY: all deps configure build test demo demo-quiet bench bench-advisor soak package image clean

all: build

deps:
	@bash packaging/deps.sh

configure: deps
	@if [ ! -f $(BUILD)/build.ninja ]; then cmake -S . -B $(BUILD) -G Ninja $(LAUNCHER) $(CMAKE_FLAGS); fi

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# PostgreSQL 13/14/16/17/18 for the per-major integration tests (cached; see the script).
test: build
	@bash packaging/pg_versions.sh
	@cd $(BUILD) && ctest --output-on-failure --timeout 600 -j $(JOBS)

demo: build
	@bash packaging/demo/run.sh $(BUILD)/dbpulse

bench: build
	@bash tests/bench/run.sh $(BUILD)

# The index advisor on three schemas it was not tuned on (tests/bench/advisor/cases.py).
bench-advisor: build
	@python3 tests/bench/advisor/run.py --dbpulse $(BUILD)/dbpulse

soak: build
	@bash tests/bench/soak.sh $(BUILD)

# The demo left running with its normal workload fires no alert (30 minutes).
demo-quiet: build
	@bash tests/bench/demo_quiet.sh $(BUILD)

package: build
	@cd $(BUILD) && cpack -G DEB

# The container image dbpulse:<version> from packaging/docker/Dockerfile, with podman (or
# docker); without a registry, debian:12 comes from debootstrap (see the script).
image: deps
	@bash packaging/docker/build-image.sh

clean:
	@rm -rf $(BUILD)
