# latch: make run (the demo) and make test (everything CI runs).
# Both install what they need, idempotently.

SHELL    := /bin/bash
GO       ?= go
BIN      := bin
# An execution count, not a duration: Go 1.26's fuzz coordinator can report
# a spurious "context deadline exceeded" when a duration ends mid-run under
# load (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 50000x
export LATCH_E2E := 1

# Fuzz targets run briefly in `make test`: package and target name.
FUZZ := \
	./proxy/rules:FuzzParse \
	./proxy/rules:FuzzIndexAgreesWithLinearScan \
	./proxy/config:FuzzParseRoute \
	./proxy/config:FuzzParseService \
	./proxy/config:FuzzParseEntrypoint \
	./proxy/config:FuzzParseFile \
	./balancer:FuzzOpen \
	./balancer:FuzzSealOpen \
	./balancer:FuzzParseKeys \
	./balancer:FuzzNewPolicy \
	./proxy:FuzzCommaTokens \
	./proxy:FuzzRawRequest \
	./proxy:FuzzScanOpenPacket \
	./proxy:FuzzScanCookie \
	./proxy:FuzzBodyFrame \
	./proxy:FuzzRawRequestOnTheLoops

.PHONY: all build run test unit e2e fuzz bench deps vet clean

all: build

build:
	$(GO) build -o $(BIN)/latch ./cmd/latch

run: build
	./$(BIN)/latch demo

deps:
	@command -v redis-server >/dev/null || { apt-get update && apt-get install -y redis-server; }
	@command -v ip >/dev/null || { apt-get update && apt-get install -y iproute2; }
	@# A real kube-apiserver and etcd, built from Go modules and cached in
	@# ~/.cache/latch-kube (about 12 minutes cold on 2 cores, instant warm).
	bash testdata/kube/build.sh
	@# pebble, Let's Encrypt's ACME test server, for the ACME end-to-end
	@# tests; cached in ~/.cache/latch-acme (about 20 s cold).
	bash testdata/acme/build.sh
	@if [ ! -f testdata/socketio/node_modules/.package-lock.json ] || \
	    [ testdata/socketio/package-lock.json -nt testdata/socketio/node_modules/.package-lock.json ]; then \
		npm ci --prefix testdata/socketio --no-audit --no-fund; \
	fi

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -count=1 -race $$($(GO) list ./... | grep -v /cmd/latch)

# The end-to-end suite runs real latch processes, backends, Node clients and
# Redis over loopback, and ends with an "N passed, M failed" line.
e2e: deps
	@mkdir -p $(BIN); set -o pipefail; $(GO) test -count=1 -v -timeout 15m ./cmd/latch 2>&1 | tee $(BIN)/e2e.log; rc=$$?; \
	echo "e2e: $$(grep -c -- '--- PASS' $(BIN)/e2e.log) passed, $$(grep -c -- '--- FAIL' $(BIN)/e2e.log) failed"; exit $$rc

fuzz:
	@for t in $(FUZZ); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run=NONE -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=200x $$pkg || exit 1; \
	done

test: deps vet unit e2e fuzz

bench:
	$(GO) test -run=NONE -bench=. -benchmem ./proxy/... ./balancer/...

clean:
	rm -rf $(BIN)

# --- observability ---
FUZZ += ./proxy:FuzzExplain

# The dashboard's browser test drives Debian's headless chromium with
# playwright-core from testdata/dashboard (no browser download).
.PHONY: deps-dashboard
deps: deps-dashboard
deps-dashboard:
	@[ -x /usr/bin/chromium ] || { apt-get update && apt-get install -y chromium; }
	@if [ ! -f testdata/dashboard/node_modules/.package-lock.json ] || \
	    [ testdata/dashboard/package-lock.json -nt testdata/dashboard/node_modules/.package-lock.json ]; then \
		npm ci --prefix testdata/dashboard --no-audit --no-fund; \
	fi
# --- end observability ---

# --- chat ---
# The chat backend (chat/, cmd/chat): its binary, the tools its end-to-end
# tests drive (kcat, Debian's chromium, testdata/browser's npm packages:
# socket.io-client and playwright-core), its fuzz targets and benchmarks.
FUZZ += ./chat:FuzzDecodeRecord ./chat:FuzzParseSend

.PHONY: chat-build chat-deps chat-bench

build: chat-build
deps: chat-deps
bench: chat-bench

chat-build:
	$(GO) build -o $(BIN)/chat ./cmd/chat

chat-deps:
	@command -v kcat >/dev/null || { apt-get update && apt-get install -y kcat; }
	@command -v chromium >/dev/null || { apt-get update && apt-get install -y chromium; }
	@if [ ! -f testdata/browser/node_modules/.package-lock.json ] || \
	    [ testdata/browser/package-lock.json -nt testdata/browser/node_modules/.package-lock.json ]; then \
		npm ci --prefix testdata/browser --no-audit --no-fund; \
	fi

# Fan-out latency through the embedded broker: 500 clients on two replicas
# (BenchmarkFanout) and the broker hop alone (BenchmarkKafkaHop).
chat-bench:
	$(GO) test -run=NONE -bench=. -benchtime=200x ./chat/
# --- end chat ---

# --- acme ---
# The reader of Host(...) names in canonical rules (the ACME host policy).
FUZZ += ./proxy:FuzzRuleHosts
# --- end acme ---
