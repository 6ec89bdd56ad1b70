# runsc-ckpt build. `make` builds the static binary bin/runsc-ckpt; see README.md.

SHELL     := /bin/bash
GO        ?= go
PREFIX    ?= /usr/local
BIN       := bin/runsc-ckpt
VERSION   := $(shell sed -n 's/^const Version = "\(.*\)"/\1/p' runsc-ckpt/version.go)
GVISOR    := $(shell $(GO) list -m -f '{{.Version}}' gvisor.dev/gvisor 2>/dev/null)
# runsc logs its own version string (package runsc/version) in every debug log; say what we are.
LDFLAGS   := -X gvisor.dev/gvisor/runsc/version.version=runsc-ckpt-$(VERSION)+gvisor-$(GVISOR)
GAZELLE   := $(GO) run github.com/bazelbuild/bazel-gazelle/cmd/gazelle@v0.53.0
# Integration tests: platforms to run on, and an overall timeout.
PLATFORMS ?= systrap,ptrace
TEST_TIMEOUT ?= 45m

.PHONY: all bench-bins install deps test unit-test fuzz-short integration-test cri-test check vet checklocks fmt-check tidy-check gazelle check-bazel demo clean FORCE

all: $(BIN)

# The binary must be static (a dynamic runsc dies in its own chroot) and must not live under /tmp.
# FORCE: go's build cache decides what to rebuild.
$(BIN): FORCE
	@mkdir -p $(dir $@)
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -ldflags '$(LDFLAGS)' -o $@ ./runsc-ckpt

# Upstream gVisor's runsc, unmodified, built from the module version go.mod pins: what the
# benchmarks (bench/) compare against in the same run.
UPSTREAM := bin/runsc-upstream
$(UPSTREAM): FORCE
	@mkdir -p $(dir $@)
	CGO_ENABLED=0 $(GO) build -o $@ gvisor.dev/gvisor/runsc

# Both runtimes the benchmarks run.
bench-bins: $(BIN) $(UPSTREAM)

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/runsc-ckpt

# Everything CI runs: static checks, unit tests, integration tests in real sandboxes.
test: deps check unit-test fuzz-short integration-test

# Tools the demo and the tests run (gcc -static for guests, readelf/eu-readelf/gdb on images,
# musl-gcc for the musl thread guest, python3 as a guest). On a fresh Debian machine the first
# `make demo` or `make test` installs what is missing with apt-get (as root, which runsc needs
# anyway); .ci/run installs the same list up front.
DEPS_CMDS := gcc readelf eu-readelf gdb python3 musl-gcc git busybox
DEPS_PKGS := gcc libc6-dev musl-tools make elfutils gdb binutils python3 git ca-certificates busybox-static
deps:
	@missing=; for c in $(DEPS_CMDS); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	[ -n "$$(gcc -print-file-name=libc.a 2>/dev/null | grep /)" ] || missing="$$missing libc.a"; \
	if [ -n "$$missing" ]; then \
		pkgs=; for p in $(DEPS_PKGS); do \
			[ "$$(dpkg-query -W -f '$${Status}' $$p 2>/dev/null)" = "install ok installed" ] || pkgs="$$pkgs $$p"; \
		done; \
		echo "deps: missing$$missing; installing$$pkgs"; \
		apt-get -o DPkg::Lock::Timeout=300 update && DEBIAN_FRONTEND=noninteractive \
			apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends $$pkgs; \
	fi

unit-test:
	$(GO) test -count=1 -p 1 $$($(GO) list ./... | grep -v '/test$$\|/test/')

# A short coverage-guided run of each image-decoder fuzz target (docs/fuzzing.md has the long
# runs). -fuzzminimizetime 0: minimizing a new input otherwise stalls a short run. The budget is
# a count of executions, not a duration: with a duration Go 1.26's coordinator can report a bare
# "context deadline exceeded" as a failure at the deadline (golang/go#75804, fixed in Go 1.27;
# docs/fuzzing.md). 400000 is about 20 s here.
FUZZTIME ?= 400000x
FUZZTIME_OBJ ?= 100000x
# The incremental target decodes whole images with segment data: slower per execution.
FUZZTIME_INCR ?= 10000x
fuzz-short:
	$(GO) test ./pkg/imgfmt -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./pkg/imgfmt -run '^$$' -fuzz '^FuzzDecodeStream$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./pkg/imgfmt -run '^$$' -fuzz '^FuzzDecodeInet$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./pkg/imgfmt -run '^$$' -fuzz '^FuzzDecodeEventObjects$$' -fuzztime $(FUZZTIME_OBJ) -fuzzminimizetime 0
	$(GO) test ./pkg/imgfmt -run '^$$' -fuzz '^FuzzDecodeProcObjects$$' -fuzztime $(FUZZTIME_OBJ) -fuzzminimizetime 0
	$(GO) test ./pkg/imgfmt -run '^$$' -fuzz '^FuzzUnixSocketObject$$' -fuzztime $(FUZZTIME_OBJ) -fuzzminimizetime 0
	$(GO) test ./pkg/imgfmt -run '^$$' -fuzz '^FuzzDecodeIncremental$$' -fuzztime $(FUZZTIME_INCR) -fuzzminimizetime 0

# test/testsum turns go test's JSON into a line per test, the tails of failing tests' output and
# one summary line; the whole stream stays in $(TEST_LOG). TEST_RUN narrows the run (go test -run),
# e.g. `make integration-test TEST_RUN='^TestDoHelloC$$'`.
TEST_LOG ?= $(CURDIR)/bin/integration-test.json
TEST_RUN ?=
integration-test: $(BIN)
	$(GO) build -o bin/testsum ./test/testsum
	set -o pipefail; RUNSC_CKPT_BIN=$(CURDIR)/$(BIN) RUNSC_CKPT_PLATFORMS=$(PLATFORMS) \
		$(GO) test -json -count=1 -p 1 -timeout $(TEST_TIMEOUT) -run '$(TEST_RUN)' -skip '^TestEnginesCRI$$' ./test/... 2>&1 \
		| bin/testsum -log $(TEST_LOG)

# Kubernetes' node API (CRI): containerd 2.x and crictl, built once from the Go module proxy into
# /var/cache/runsc-ckpt-engines (minutes the first time), drive runsc-ckpt. Not part of `test`;
# .ci/run runs it after. docs/engines.md.
cri-test: $(BIN)
	RUNSC_CKPT_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -timeout 45m -v -run '^TestEnginesCRI$$' ./test/

check: vet checklocks fmt-check tidy-check check-bazel

vet:
	$(GO) vet ./...

# gVisor's lock checker, the analyzer gVisor runs on its own sentry, at the gVisor version go.mod
# pins: a field annotated `+checklocks:mu` may only be touched with mu held (the lock order is in
# pkg/sentry/ckpt/doc.go). Installed with `go install pkg@version` (like Gazelle above), so go.mod
# gains no golang.org/x/tools requirement. It checks every package that declares a mutex; the
# first run computes facts for all of gVisor's sentry (minutes), later runs are cached.
CHECKLOCKS_PKGS = $(shell grep -rl --include='*.go' 'sync\.\(RW\)\?Mutex' pkg runsc-ckpt test | xargs -r -n1 dirname | sort -u | sed 's|^|./|')
.PHONY: checklocks
checklocks:
	GOBIN=$(CURDIR)/bin $(GO) install gvisor.dev/gvisor/tools/checklocks/cmd/checklocks@$(GVISOR)
	$(GO) vet -vettool=$(CURDIR)/bin/checklocks $(CHECKLOCKS_PKGS)

# go.mod and go.sum must be exactly what `go mod tidy` makes of them.
tidy-check:
	$(GO) mod tidy -diff

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Bazel files are generated by Gazelle: `make gazelle` regenerates the BUILD.bazel files and
# deps.bzl (from go.mod); `make check-bazel` fails if any of them is out of date, without
# touching the tree (deps.bzl is regenerated in a scratch copy and compared).
UPDATE_REPOS := update-repos -from_file=go.mod -to_macro=deps.bzl%go_dependencies -prune
gazelle:
	$(GAZELLE) $(UPDATE_REPOS) -repo_root=$(CURDIR)
	$(GAZELLE) -repo_root=$(CURDIR)

# Gazelle v0.53's list of standard packages predates Go 1.24's "weak": it logs an error for that
# import and (correctly) adds no dependency; that one message is filtered, any other fails.
GAZELLE_KNOWN := finding module path for import weak
check-bazel:
	@out=$$($(GAZELLE) -repo_root=$(CURDIR) -mode=diff 2>&1); rc=$$?; \
		printf '%s\n' "$$out" | grep -v '$(GAZELLE_KNOWN)' || true; \
		if [ $$rc -ne 0 ]; then echo "BUILD.bazel files are out of date: run make gazelle"; exit 1; fi; \
		if printf '%s\n' "$$out" | grep -v '$(GAZELLE_KNOWN)' | grep -q '^gazelle: '; then echo "gazelle reported errors"; exit 1; fi
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		cp go.mod go.sum WORKSPACE BUILD.bazel deps.bzl "$$tmp"/ && \
		(cd "$$tmp" && $(GAZELLE) $(UPDATE_REPOS) -repo_root="$$tmp") && \
		diff -u deps.bzl "$$tmp/deps.bzl" || { echo "deps.bzl is out of date: run make gazelle"; exit 1; }
	@echo "Bazel files are in sync"

# The main job: build runsc-ckpt, run a program in a sandbox that freezes itself into an image,
# then thaw the image in a new sandbox and let it finish (demo/demo.sh).
demo: deps $(BIN)
	demo/demo.sh

clean:
	rm -rf bin

FORCE:
