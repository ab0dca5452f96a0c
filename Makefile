# The two commands of README.md: `make run` and `make test`.
.PHONY: all deps test-deps build demo console run test bench bench-quick deb clean

all: build

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

build: deps
	cmake --preset release -DFO_BUILD_TESTS=OFF >/dev/null
	cmake --build build/release -j$$(nproc)

# The demo (clients/web) built to static files that the hub serves at /.
demo: deps
	cd clients/web && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; } && npm run build

# The operator console (clients/console) built to static files that the hub serves at
# /console/ (--console-dir).
console: deps
	cd clients/console && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; } && npm run build

# Starts the hub on its embedded default (SQLite in ./data) with the demo at /, the console
# at /console/, the demo's rules (clients/web/rules.lua) and a development token per
# browser tab (clients/web/dev-run.sh says what it enabled).
run: build demo console
	exec clients/web/dev-run.sh build/release ./data

test: test-deps
	cmake --preset asan >/dev/null
	cmake --build build/asan -j$$(nproc)
	ctest --preset asan -j$$(nproc)
	cmake --preset dev >/dev/null
	cmake --build build/dev -j$$(nproc)
	tests/valgrind.sh build/dev

# The benchmarks: fo-microbench (bench/micro), then the issue-5/8 scenarios against the hub
# and the Node peer beside the fan-out floor (bench/floor), with the ratio table, the
# fractions of the floor, d2's highest sustained rates and d's syscall counts under strace
# (bench/run.sh), then the open-loop latency sweep and its plot build/bench/latency.svg
# (bench/sweep.sh, bench/plot.gp; needs gnuplot-nox), then the hub's peak RSS under
# --memory-budget (bench/memory.sh). The last prints build/bench/summary.txt: the table and
# every issue-8 target with pass/fail.
# Full: about 20 minutes. `make bench ARGS=--quick` or `make bench-quick`: about 3 minutes.
# Results: build/bench-micro.json, build/bench/{summary.txt,results.json,sweep.json,
# memory.json,latency.svg}, build/bench/runs/ (every run).
bench: build
	@scripts/install-deps.sh bench
	bench/micro/run.sh $(findstring --quick,$(ARGS))
	bench/run.sh $(ARGS)
	bench/sweep.sh $(ARGS)
	bench/memory.sh $(ARGS)

bench-quick:
	$(MAKE) bench ARGS="--quick $(ARGS)"

# The Debian package of the release build (dist/CPack.cmake): build/release/flushout_*.deb.
deb: deps
	cmake --preset release -DFO_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
	cmake --build build/release -j$$(nproc)
	cd build/release && cpack -G DEB

clean:
	rm -rf build
