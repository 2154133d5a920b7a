# Vega's developer entry points. The README's quick start is `make run` and
# `make test`; CI (.ci/run) calls `make test` with RACE=1.

GO       ?= go
PKGS     ?= ./...
RACE     ?=
BIN      := bin/vega
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
TESTFLAGS ?=

ifeq ($(RACE),1)
TESTFLAGS += -race
endif

.PHONY: run build test bench lint fmt tools

## run: start the whole system on the embedded defaults (SQLite, embedded NATS, local files)
run: build
	./$(BIN) dev

## build: build bin/vega
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vega

## test: every test; PostgreSQL and NATS tests skip loudly when unreachable (and fail with CI=true)
test:
	$(GO) test $(TESTFLAGS) -count=1 -timeout 8m $(PKGS)

## bench: the benchmark table of docs/benchmarks.md (measures; never fails on a MISS)
bench: build
	$(GO) run ./cmd/vegabench -out docs/benchmarks.md

## lint: gofmt, go vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$$( command -v staticcheck || echo $$($(GO) env GOPATH)/bin/staticcheck ) $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')
