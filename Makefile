# phasegate — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/phasegate

# Paths per property in `make test` (rapid's default is 100) and in `make proptest`.
RAPID_CHECKS ?= 500
PROPTEST_CHECKS ?= 10000
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 30s
# `make bench`: flags for the load harness, e.g. LOAD_FLAGS='-streams 2000 -write-docs'.
LOAD_FLAGS ?=
# `make soak`: how long and how many concurrent clients.
SOAK_DURATION ?= 30s
SOAK_CONCURRENCY ?= 64
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# `make mutate`: the mutation tester, and the paths per property in each mutant's test run.
GREMLINS := github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
MUTATE_CHECKS ?= 300
MUTATE_FLAGS ?=

.DEFAULT_GOAL := help
.PHONY: help build run test test-deps proptest mutate bench soak lint fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## build bin/phasegate
	$(GO) build -o $(BIN) ./cmd/phasegate

run: build ## serve the embedded demo: mock LLM + chat route on 127.0.0.1:9080, admin on :9091
	./$(BIN) run

test: test-deps ## go vet, then every test with -race: property tests at CI size, fuzz seeds, goleak, real Redis; then examples/tokencount's module
	$(GO) vet ./...
	PHASEGATE_REQUIRE_REDIS=1 RAPID_CHECKS=$(RAPID_CHECKS) $(GO) test -race -count=1 ./...
	@# The external example is its own module (go test ./... above skips it): tidy, vet, test.
	cd examples/tokencount && export GOWORK=off && $(GO) mod tidy -diff && $(GO) vet ./... && \
	  RAPID_CHECKS=$(RAPID_CHECKS) $(GO) test -race -count=1 ./...

# The Redis store's tests run a real redis-server; install Debian's package
# when it is missing (CI runs as root), and say nothing when it is there.
# RUNLEVEL=1 keeps the package from starting a server of its own.
test-deps: ## install redis-server (Debian) when it is missing; `make test` does
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  apt="$$sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get -qq"; \
	  out=$$( { $$apt update && $$apt install -y --no-install-recommends redis-server; } 2>&1 ) || { echo "$$out"; exit 1; }; \
	}

proptest: ## the property tests, $(PROPTEST_CHECKS) generated paths per property
	RAPID_CHECKS=$(PROPTEST_CHECKS) RAPID_NOFAILFILE=false $(GO) test -count=1 -timeout 60m -run 'Property' -v ./... | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|\[rapid\]'

mutate: ## mutation testing of fsm, phases and the LLM attempt scope (docs/testing.md); last line: the score
	@$(GO) build -o bin/mutate ./internal/mutate
	@./bin/mutate -gremlins $(GREMLINS) -rapid-checks $(MUTATE_CHECKS) $(MUTATE_FLAGS)

bench: ## micro-benchmarks (-benchmem), then the load harness against a bare ReverseProxy (LOAD_FLAGS='-streams 2000 -write-docs')
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./fsm ./phases ./llm/... ./internal/...
	$(GO) run ./bench/load $(LOAD_FLAGS)

soak: build ## the real binary + mock LLM under mixed faulty traffic, then leak and accounting checks
	$(GO) run ./bench/soak/cmd/soak -binary $(BIN) -duration $(SOAK_DURATION) -concurrency $(SOAK_CONCURRENCY)

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd examples/tokencount && GOWORK=off $(GO) run $(STATICCHECK) ./...

fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean: ## remove build output
	rm -rf bin
