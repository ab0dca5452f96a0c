# The two commands of README.md: `make run` and `make test`.
.PHONY: all deps test-deps build run test bench clean

all: build

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

build: deps
	cmake --preset release -DFO_BUILD_TESTS=OFF >/dev/null
	cmake --build build/release -j$$(nproc)

# Until the hub lands, the runnable program is the core's micro-benchmark.
run: build
	build/release/bench/fo-microbench --quick

test: test-deps
	cmake --preset asan >/dev/null
	cmake --build build/asan -j$$(nproc)
	ctest --preset asan -j$$(nproc)

bench: build
	bench/micro/run.sh

clean:
	rm -rf build
