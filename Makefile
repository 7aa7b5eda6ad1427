# provision — build, test, benchmark, fuzz.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# Inlining only where the run spends its CPU: the runtime (allocation,
# maps, scheduling), the standard packages every step calls, and crypto
# (SHA-512-crypt, TLS). Elsewhere it adds 1.2 MB of binary for no
# measurable gain; the runtime's alone, for 110 KB, takes about 9 % off
# a whole run (interleaved runs of test/bench/commands.sh's tree).
GCFLAGS   := -gcflags=all=-l -gcflags=crypto/...= -gcflags=runtime= \
	-gcflags=internal/...= -gcflags=syscall= -gcflags=os= -gcflags=sync/...= \
	-gcflags=strings= -gcflags=bytes= -gcflags=unicode/...=
BIN       := bin/provision
# make lint installs it (from the Go module proxy) when it is missing.
STATICCHECK_VERSION := v0.8.2
STATICCHECK = $(shell $(GO) env GOPATH)/bin/staticcheck
PKGS      := ./...
FUZZTIME  ?= 10s
DESTDIR   ?=
PREFIX    ?= /usr

export CGO_ENABLED := 0

.PHONY: all build arm64 demo test test-short e2e bench bench-vm fuzz lint install man clean rpm

all: build

build: $(BIN)

$(BIN): $(shell find cmd provision sources modules initrd -name '*.go' -not -name '*_test.go' 2>/dev/null) go.mod go.sum
	$(GO) build -trimpath $(GCFLAGS) -ldflags '$(LDFLAGS)' -o $@ ./cmd/provision

arm64:
	GOARCH=arm64 $(GO) build -trimpath $(GCFLAGS) -ldflags '$(LDFLAGS)' -o bin/provision-arm64 ./cmd/provision

# A dry run on the shipped NoCloud seed: prints the plan, changes nothing.
demo: $(BIN)
	$(BIN) --dry-run --source test/seeds/nocloud-demo

# Unit tests and the root/loop tier (skips with a reason when not root);
# the VM tier runs when PROVISION_E2E=1 (see `make e2e`).
test:
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short:
	$(GO) test -count=1 -short $(PKGS)

# The VM tier: boots real kernels under qemu with every seed type.
e2e: $(BIN) arm64
	PROVISION_E2E=1 PROVISION_E2E_BINARY=$(CURDIR)/$(BIN) PROVISION_E2E_BINARY_ARM64=$(CURDIR)/bin/provision-arm64 $(GO) test -count=1 -timeout 40m -v ./test/e2e/...

# Agent start to switch_root in a tier A VM: NoCloud seed vs no source;
# BASELINE=path/to/another/provision boots that build in turn with this one.
bench-vm: $(BIN)
	PROVISION_E2E=1 PROVISION_E2E_BENCH=1 PROVISION_E2E_BINARY=$(CURDIR)/$(BIN) PROVISION_E2E_BENCH_BASELINE=$(if $(BASELINE),$(abspath $(BASELINE))) $(GO) test -count=1 -run TestBenchSwitchRoot -v ./test/e2e/

bench: $(BIN)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 $(PKGS)
	test/bench/commands.sh $(BIN)
	test/bench/side-by-side.sh $(BIN)
	test/bench/flat.sh $(BIN)
	@if command -v qemu-system-x86_64 >/dev/null; then $(MAKE) bench-vm; else echo "qemu-system-x86_64 not installed: skipping the VM timing"; fi

# Every fuzz target, each for FUZZTIME.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) test/fuzz.sh

lint:
	@test -z "$$(gofmt -l cmd provision sources modules initrd test)" || { gofmt -l cmd provision sources modules initrd test; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	@test -x "$(STATICCHECK)" || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	"$(STATICCHECK)" $(PKGS)

# Man pages: roff from doc/provision.N.md by doc/mangen (no date in them,
# so a build is reproducible).
MANPAGES  := bin/provision.7 bin/provision.8

man: $(MANPAGES)

bin/provision.%: doc/provision.%.md $(wildcard doc/mangen/*.go)
	@mkdir -p bin
	$(GO) run ./doc/mangen -version $(VERSION) -o $@ $<

# The cloud-config JSON Schema, for editors (provision schema).
schema: bin/cloud-config.schema.json

bin/cloud-config.schema.json: $(BIN)
	$(BIN) schema > $@

install: $(BIN) $(MANPAGES) bin/cloud-config.schema.json
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/provision
	install -D -m 0644 bin/provision.7 $(DESTDIR)$(PREFIX)/share/man/man7/provision.7
	install -D -m 0644 bin/provision.8 $(DESTDIR)$(PREFIX)/share/man/man8/provision.8
	install -D -m 0644 bin/cloud-config.schema.json $(DESTDIR)$(PREFIX)/share/provision/cloud-config.schema.json
	install -D -m 0644 dist/completions/provision.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/provision
	install -D -m 0644 dist/completions/_provision $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_provision
	install -D -m 0644 dist/completions/provision.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/provision.fish
	install -d $(DESTDIR)$(PREFIX)/lib/dracut/modules.d/50provision
	install -m 0755 initrd/dracut/50provision/module-setup.sh initrd/dracut/50provision/provision-initrd.sh $(DESTDIR)$(PREFIX)/lib/dracut/modules.d/50provision/
	install -m 0644 initrd/dracut/50provision/provision.service initrd/dracut/50provision/combustion-skip.conf $(DESTDIR)$(PREFIX)/lib/dracut/modules.d/50provision/

# An RPM for openSUSE and Fedora, built here with rpmbuild: Source0 is the
# checkout's tracked files (as they are in the work tree) plus the vendored
# Go modules, so the build needs no network. RPM versions have no '-'.
RPMDIR      ?= $(CURDIR)/bin/rpm
# A tag v1.2.3 gives 1.2.3 (1.2.3+4.gSHA after it); no tag: 0.0.0+gitSHA.
RPM_VERSION := $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && echo "$$v" | sed -e 's/^v//' -e 's/-/+/' -e 's/-/./g' || echo "0.0.0+git$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)")
RPM_SOURCE  := $(RPMDIR)/SOURCES/provision-$(RPM_VERSION).tar.gz

rpm:
	rm -rf $(RPMDIR) && mkdir -p $(RPMDIR)/SOURCES $(RPMDIR)/stage
	$(GO) mod vendor -o $(RPMDIR)/stage/vendor
	git ls-files -z | xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh > $(RPMDIR)/stage/files
	tar --null --transform 's,^,provision-$(RPM_VERSION)/,' -czf $(RPM_SOURCE) -T $(RPMDIR)/stage/files -C $(RPMDIR)/stage vendor
	rm -rf $(RPMDIR)/stage
	rpmbuild -ba --nodeps --define '_topdir $(RPMDIR)' --define 'pkg_version $(RPM_VERSION)' \
		--define 'go_cmd $(shell command -v $(GO))' dist/provision.spec
	@ls $(RPMDIR)/RPMS/*/provision-*.rpm

clean:
	rm -rf bin
