# opx — build, test and measure. The README names these targets.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
# Fuzzing is budgeted in executions, not seconds: a wall-clock -fuzztime can
# fail with a bare "context deadline exceeded" when a loaded machine starves the
# workers at the deadline (Go issue 75804). FUZZSCALE multiplies every budget;
# FUZZTIME, when set (e.g. 5m), overrides them all with one duration.
FUZZSCALE ?= 1
FUZZMINIMIZETIME ?= 10s
fuzzrun = $(GO) test -run='^$$' -fuzz='^$(1)$$' -fuzzminimizetime=$(FUZZMINIMIZETIME) \
	-fuzztime=$(if $(FUZZTIME),$(FUZZTIME),$(shell echo $$(($(3) * $(FUZZSCALE))))x) $(2)

.PHONY: all build man test unit e2e integration wintest vet fuzz bench soak demo install uninstall release vendor-hash clean

# release targets: OS/ARCH pairs built by make release
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
# DIST: the directory make release empties and fills
DIST ?= dist
# ZIP: how make release zips the files named after it: zip, or python3's
# zipfile (on every Debian) when zip is missing
ZIP ?= $(if $(shell command -v zip),zip -q -X,python3 -m zipfile -c)

all: build

## build: bin/opx and the bin/opx-authd link
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/opx .
	ln -sf opx bin/opx-authd

## test: everything: checks, the package tests (and the Windows ones under wine), the end-to-end suite, real
## Vault and OpenBao, short fuzzing
test: vet unit wintest e2e integration
	$(MAKE) --no-print-directory fuzz

## unit: each package's own tests, race-enabled (every package but e2e)
unit:
	$(GO) test -race -count=1 -timeout=10m $$($(GO) list ./... | grep -v '^github.com/opxhq/opx/e2e')

## e2e: the end-to-end suite (package e2e), race-enabled: the real opx binary
## run as a user would, each test with its own HOME, socket and daemon, in parallel
e2e:
	WINEPREFIX='$(WINEPREFIX)' $(GO) test -race -count=1 -timeout=20m ./e2e/...

## integration: the real daemon against a real Vault and a real OpenBao,
## each started in-process from its own module (integration/vault, integration/openbao)
integration:
	cd integration/vault && $(GO) test -count=1 -timeout=20m ./...
	cd integration/openbao && $(GO) test -count=1 -timeout=20m ./...

## wintest: the Windows tests, under wine (.ci/wine.sh prepares it): every
## package's own tests but e2e's (Linux and macOS only), built for windows/amd64
WINEPREFIX ?= $(HOME)/.cache/opx-wine
WINPKGS ?= ./api/ ./winpipe/ ./xdg/ ./audit/ ./policy/ ./self/ ./masked/ ./scrub/ ./client/ ./backend/ \
  ./daemon/ ./shim/ ./session/ ./template/ ./envfile/ ./cli/ ./internal/console/ ./internal/notify/ .
wintest:
	WINEPREFIX='$(WINEPREFIX)' ./.ci/wine.sh
	WINEPREFIX='$(WINEPREFIX)' WINEDEBUG=-all GOOS=windows GOARCH=amd64 \
	  $(GO) test -count=1 -timeout=10m -exec wine $(WINPKGS)

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	for p in darwin/arm64 darwin/amd64 linux/arm64 windows/amd64 windows/arm64; do \
	  CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -o /dev/null . || exit 1; done
	@if command -v ruby >/dev/null; then ruby -c packaging/homebrew/opx.rb; \
	  else echo "ruby not installed: Homebrew formula not syntax-checked"; fi
	@if command -v nix-hash >/dev/null; then ./packaging/nix/vendor-hash.sh --check && \
	  nix-instantiate --parse flake.nix >/dev/null && nix-instantiate --parse packaging/nix/home-manager.nix >/dev/null && \
	  echo "flake.nix and the Home Manager module parse"; \
	  else echo "nix not installed: flake not checked"; fi

## fuzz: each fuzz target, about 8 s each on two cores (budgets in executions)
fuzz:
	$(call fuzzrun,FuzzParseRef,./api/,80000)
	$(call fuzzrun,FuzzSplitInject,./backend/,100000)
	$(call fuzzrun,FuzzUnquoteJSON,./backend/,100000)
	$(call fuzzrun,FuzzParseEnvFile,./envfile/,80000)
	$(call fuzzrun,FuzzHandlers,./daemon/,60000)
	$(call fuzzrun,FuzzAppendJSONString,./api/,60000)
	$(call fuzzrun,FuzzParse,./policy/,150000)
	$(call fuzzrun,FuzzConfigFile,.,10000)
	$(call fuzzrun,FuzzConceal,./mask/,100000)
	$(call fuzzrun,FuzzParseTemplate,./template/,80000)

## bench: Go benchmarks, then the whole-process report, the soak and the server
## requests per workload against real Vault and OpenBao, as Markdown tables
bench: build
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./daemon/ ./api/ ./mask/ ./client/
	$(GO) test -tags 'bench soak' -run='^(TestBenchStartup|TestBenchReport|TestSoak)$$' -count=1 -v -timeout=30m ./e2e/
	cd integration/vault && $(GO) test -tags bench -run='^TestBenchReport$$' -count=1 -v -timeout=10m .
	cd integration/openbao && $(GO) test -tags bench -run='^TestBenchReport$$' -count=1 -v -timeout=10m .

## soak: 1,000 connections, 200,000 requests against the fake backend, with a report
soak:
	$(GO) test -tags soak -run='^TestSoak$$' -count=1 -v -timeout=30m ./e2e/

## demo: build, start a daemon on the fake backend in a temporary HOME, read
## through it, stop it, and remove the temporary HOME
demo: build
	@set -e; dir=$$(mktemp -d); trap 'bin/opx stop >/dev/null 2>&1 || true; rm -rf "$$dir"' EXIT; \
	export HOME="$$dir" XDG_DATA_HOME="$$dir/data" XDG_CONFIG_HOME="$$dir/config" XDG_RUNTIME_DIR="$$dir/run" OP_AUTHD_BACKEND=fake; \
	echo '$$ opx read op://Private/db/password vault://secret/app#key'; \
	bin/opx read op://Private/db/password 'vault://secret/app#key'; \
	echo "\$$ opx run --env DB_PASS=op://Private/db/password -- sh -c 'echo \"DB_PASS=\$$DB_PASS\"'"; \
	bin/opx run --env DB_PASS=op://Private/db/password -- sh -c 'echo "DB_PASS=$$DB_PASS"'; \
	echo '$$ opx status'; bin/opx status; \
	echo '$$ opx stop'; bin/opx stop

## man: bin/opx.1, the man page, made from the command grammar (opx --man)
man: build
	bin/opx --man > bin/opx.1

## install: opx and the opx-authd link into BINDIR, opx.1 into MANDIR/man1
install: build man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 bin/opx $(DESTDIR)$(BINDIR)/opx
	ln -sf opx $(DESTDIR)$(BINDIR)/opx-authd
	install -m 0644 bin/opx.1 $(DESTDIR)$(MANDIR)/man1/opx.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/opx $(DESTDIR)$(BINDIR)/opx-authd $(DESTDIR)$(MANDIR)/man1/opx.1

## release: $(DIST)/opx_VERSION_OS_ARCH.tar.gz for each Unix platform (opx, the
## opx-authd link, the man page, completions, the systemd unit, the direnv
## library, README), $(DIST)/opx_VERSION_windows_ARCH.zip for each Windows one
## (opx.exe, opx-authd.exe, README) and SHA256SUMS.
## The zip holds opx-authd.exe as a copy: a zip holds no hard link and a
## symbolic link needs a privilege on Windows; opx tells its role from its
## name. The zip's files are at its top, with no directory.
release: build
	rm -rf $(DIST) && mkdir -p $(DIST)
	set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; name=opx_$(VERSION)_$${os}_$${arch}; d=$(DIST)/$$name; \
	  if [ $$os = windows ]; then \
	    mkdir -p $$d; \
	    CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$d/opx.exe .; \
	    cp $$d/opx.exe $$d/opx-authd.exe; cp README.md $$d/; \
	    (cd $$d && $(ZIP) ../$$name.zip opx.exe opx-authd.exe README.md); rm -rf $$d; continue; \
	  fi; \
	  mkdir -p $$d/completions; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$d/opx .; \
	  ln -sf opx $$d/opx-authd; \
	  bin/opx completion bash > $$d/completions/opx.bash; \
	  bin/opx completion zsh > $$d/completions/_opx; \
	  bin/opx completion fish > $$d/completions/opx.fish; \
	  bin/opx --man > $$d/opx.1; \
	  cp README.md packaging/systemd/opx.service packaging/direnv/opx.sh $$d/; \
	  tar -C $(DIST) -czf $(DIST)/$$name.tar.gz $$name; rm -rf $$d; \
	done
	cd $(DIST) && for f in *.tar.gz *.zip; do if [ -e "$$f" ]; then sha256sum "$$f"; fi; done > SHA256SUMS

## vendor-hash: the vendorHash flake.nix needs after go.mod changes (needs nix-hash)
vendor-hash:
	./packaging/nix/vendor-hash.sh

clean:
	rm -rf bin $(DIST)
