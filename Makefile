# tradecore — the Makefile is the entry point and mirrors CI (.ci/run calls `make test`).
# Bare `make` lists the targets.

GO        ?= go
DATA_DIR  ?= ./var
FUZZTIME  ?= 30s
# The engine make bench compares against, in the same run: the main before the
# threading-model and client-reference work. Move it forward when a new baseline lands.
BENCH_BASE ?= 1e46dab
export TRADECORE_DATA_DIR ?= $(DATA_DIR)

.DEFAULT_GOAL := help
.PHONY: help deps build run demo test bench fuzz lint clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-7s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install the Debian packages tests and local defaults need (idempotent)
	@scripts/deps.sh

build: ## build every binary into ./bin
	$(GO) build -o bin/ ./cmd/...

run: deps build ## start the trading core on 127.0.0.1 (order entry 7001, market data 7002, metrics 9464) with a demo key for tcclient (Ctrl-C stops it)
	bin/tradecore serve --data-dir $(DATA_DIR) --demo-key $(DATA_DIR)/demo-key.json

demo: deps build ## a scripted tcclient session (orders, a fill, a reject, a restart and a replay); verifies the audit log it leaves in var/demo
	scripts/demo.sh $(DATA_DIR)

test: deps ## everything CI runs: core and auditverify build without cgo, all tests with -race and invariants
	CGO_ENABLED=0 $(GO) build ./core/... ./cmd/auditverify/
	TRADECORE_REQUIRE_ENV=1 $(GO) test -race -tags invariants -timeout 30m ./...

bench: deps build ## engine, ring and signing benchmarks, then the tcbench report (see README "Benchmarks")
	$(GO) test -run '^$$' -bench 'RandomLimits$$|MoveHeavy$$' -benchtime 2000000x ./core/
	$(GO) test -run '^$$' -bench 'Latency$$' -benchtime 1x ./core/
	$(GO) test -run '^$$' -bench . -benchtime 1s ./core/ring/ ./hsm/remote/
	@scripts/build-baseline.sh $(BENCH_BASE) bin/tcbench-base
	bin/tcbench $$(test -x bin/tcbench-base && echo --baseline bin/tcbench-base)

fuzz: deps ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

lint: ## gofmt, go vet, staticcheck (pinned in go.mod's tool block)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "lint: run gofmt -w on the files above" >&2; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

clean: ## remove build output (keeps ./var)
	rm -rf bin
