# The two commands of README.md: `make run` and `make test`.
.PHONY: all deps test-deps build demo run test bench clean

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
	cd clients/web && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build

# Starts the hub on its embedded default (SQLite in ./data) with the demo at /.
run: build demo
	@mkdir -p data
	@echo "flushout-hub: the demo is at http://127.0.0.1:7420/ (Ctrl-C stops the hub)"
	exec build/release/hub/flushout-hub --listen 127.0.0.1:7420 --data ./data \
		--static clients/web/dist

test: test-deps
	cmake --preset asan >/dev/null
	cmake --build build/asan -j$$(nproc)
	ctest --preset asan -j$$(nproc)

bench: build
	bench/micro/run.sh

clean:
	rm -rf build
