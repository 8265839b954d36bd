# ukitool: build, run and test. See README.md and docs/testing.md.
#
#   make deps      install everything the project uses (apt, rustup target, wasm-bindgen, npm)
#   make run       the main job: build, inspect a sample UKI made from Debian's packages,
#                  build the browser tool and serve it on http://127.0.0.1:8000/
#   make test      every test: cargo's, then the browser tests
#   make lint      rustfmt --check, clippy -D warnings, no function over 120 lines,
#                  eslint and prettier --check for the page (web/)
#   make dist      release artifacts in dist/: .deb, static binary, one-file page (docs/ship.md)

# Every Debian package the project (build, fixtures, tests, benchmarks) uses.
APT_PACKAGES := \
	make gcc libc6-dev ca-certificates python3 nodejs util-linux \
	systemd-boot-efi linux-image-amd64 shim-signed grub-efi-amd64-signed \
	ovmf qemu-system-x86 qemu-system-arm qemu-efi-aarch64 binutils-aarch64-linux-gnu \
	sbsigntool osslsigncode pesign python3-pefile \
	efitools softhsm2 opensc p11-kit-modules \
	binutils busybox-static cpio gzip zstd xz-utils qemu-utils python3-fusepy openssl file \
	mtools dosfstools gdisk fdisk e2fsprogs bmap-tools xfsprogs grub-common grub-pc-bin \
	chromium binaryen hyperfine time
# Debian's npm, only when `npm` is missing: NodeSource's nodejs bundles npm and conflicts with it.
APT_NPM := npm

WASM_BINDGEN_VERSION := 0.2.130
HOST ?= 127.0.0.1
PORT ?= 8000
FIXTURES := tests/fixtures/out
# Extra arguments for the test binaries, e.g. `make test CARGO_TEST_ARGS=--nocapture`.
CARGO_TEST_ARGS ?=

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(HOME)/.cargo/bin:$(PATH)
export DEBIAN_FRONTEND := noninteractive

SITE ?= site

.PHONY: site all deps build web fixtures fixtures-big run test lint bench fuzz \
	dist dist-deps dist-check

all: build

deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${db:Status-Status}\n' "$$p" 2>/dev/null | grep -qx installed || echo "$$p"; \
	done); \
	command -v npm >/dev/null || missing="$$missing $(APT_NPM)"; \
	if [ -n "$${missing// }" ]; then \
		echo "deps: installing" $$missing; \
		apt-get update; \
		apt-get install -y $(APT_PACKAGES) \
			$$(command -v npm >/dev/null || echo $(APT_NPM)); \
	else \
		echo "deps: all Debian packages present"; \
	fi
	rustup target list --installed | grep -qx wasm32-unknown-unknown || \
		rustup target add wasm32-unknown-unknown
	[ "$$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $(WASM_BINDGEN_VERSION)" ] || \
		cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)
	for d in tests/e2e web; do \
		if [ -f $$d/package.json ]; then (cd $$d && npm install --no-audit --no-fund); fi; \
	done

build:
	cargo build

web:
	bash web/build.sh

# Static hosting (e.g. GitHub Pages): the page and its assets, nothing else, in $(SITE)/.
site: web
	rm -rf $(SITE) && mkdir -p $(SITE)/web
	cp index.html $(SITE)/ && cp -r web/app web/pkg $(SITE)/web/
	@echo "site: publish $(SITE)/ as static files"

fixtures:
	bash tests/fixtures/generate.sh $(FIXTURES)

fixtures-big:
	bash tests/fixtures/generate.sh big $(FIXTURES)

run: deps build fixtures
	@echo "== ukitool inspect $(FIXTURES)/uki.efi (systemd-stub + Debian kernel + busybox initrd)"
	cargo run --quiet -p ukitool -- inspect $(FIXTURES)/uki.efi
	$(MAKE) web
	@echo "== browser tool: http://$(HOST):$(PORT)/index.html (Ctrl-C to stop)"
	python3 -m http.server --bind $(HOST) $(PORT)

# cargo's and node's own summaries end the output; any failure fails the target, but the
# browser tests still run after a cargo failure so one run shows everything.
test: deps dist-deps fixtures
	cargo build -p ukitool
	rc=0; \
	cargo test --workspace --no-fail-fast -- $(CARGO_TEST_ARGS) || rc=1; \
	if compgen -G 'tests/e2e/*.test.*js' >/dev/null; then \
		$(MAKE) web && node --test tests/e2e/ || rc=1; \
	fi; \
	$(MAKE) dist-check || rc=1; \
	exit $$rc

lint:
	cargo fmt --all -- --check
	python3 tools/fn-length.py
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p ukitool-web --lib --target wasm32-unknown-unknown -- -D warnings
	[ -x web/node_modules/.bin/eslint ] || (cd web && npm install --no-audit --no-fund)
	cd web && node_modules/.bin/eslint . && node_modules/.bin/prettier --check .

bench: build
	@if [ -f bench/run.sh ]; then bash bench/run.sh; else python3 bench/run.py; fi

fuzz:
	bash fuzz/run.sh

# ---- Release artifacts (docs/ship.md) ---------------------------------------------------
# What `make dist` needs beyond `make deps`: the static (musl) target and C toolchain, the
# Debian packaging tools and their referees (lintian, man, mandoc), debootstrap for the
# install test.
DIST_APT_PACKAGES := musl-tools dpkg-dev lintian man-db groff-base mandoc debootstrap file
MUSL_TARGET := x86_64-unknown-linux-musl
GNU_TARGET := x86_64-unknown-linux-gnu
DIST ?= dist
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
# The release's date: the last commit's, unless the caller sets it. Every date in the
# artifacts is this one.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
# Paths in panic messages are made machine-independent; symbols are stripped (lintian).
DIST_CARGO := SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) CARGO_PROFILE_RELEASE_STRIP=symbols \
	RUSTFLAGS="--remap-path-prefix=$(CURDIR)=/build/ukitool --remap-path-prefix=$${CARGO_HOME:-$(HOME)/.cargo}=/cargo" \
	cargo build --release --locked -p ukitool

dist-deps:
	@missing=$$(for p in $(DIST_APT_PACKAGES); do \
		dpkg-query -W -f='$${db:Status-Status}\n' "$$p" 2>/dev/null | grep -qx installed || echo "$$p"; \
	done); \
	if [ -n "$${missing// }" ]; then \
		echo "dist-deps: installing" $$missing; \
		apt-get update && apt-get install -y $$missing; \
	fi
	rustup target list --installed | grep -qx $(MUSL_TARGET) || rustup target add $(MUSL_TARGET)
	[ -x web/node_modules/.bin/esbuild ] || (cd web && npm install --no-audit --no-fund)

dist: dist-deps web
	rm -rf $(DIST) && mkdir -p $(DIST)
	$(DIST_CARGO) --target $(GNU_TARGET)
	$(DIST_CARGO) --target $(MUSL_TARGET)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) bash pkg/deb.sh target/$(GNU_TARGET)/release/ukitool $(DIST)
	cp target/$(MUSL_TARGET)/release/ukitool $(DIST)/ukitool-$(VERSION)-x86_64-linux-musl
	node web/bundle.mjs $(DIST)/ukitool.html
	cd $(DIST) && sha256sum ukitool_$(VERSION)_amd64.deb ukitool-$(VERSION)-x86_64-linux-musl \
		ukitool.html >SHA256SUMS
	touch -d @$(SOURCE_DATE_EPOCH) $(DIST)/*
	@cat $(DIST)/SHA256SUMS

# Two `make dist` runs, the ukitool crates recompiled in between (dependencies are kept:
# rebuilding them too would cost CI minutes and they are not ours), must give the same
# SHA256SUMS; then the artifacts' own tests (tests/tests/dist.rs, the ignored ones, and
# the page test on the shipped ukitool.html).
dist-check:
	$(MAKE) dist
	cp $(DIST)/SHA256SUMS target/SHA256SUMS.first
	cargo clean --release --target $(GNU_TARGET) -p ukitool -p ukitool-core
	cargo clean --release --target $(MUSL_TARGET) -p ukitool -p ukitool-core
	$(MAKE) dist
	diff target/SHA256SUMS.first $(DIST)/SHA256SUMS && echo "dist-check: two builds, identical SHA256SUMS"
	UKITOOL_DIST=$(CURDIR)/$(DIST) cargo test -p ukitool-tests --test dist -- --ignored $(CARGO_TEST_ARGS)
	UKITOOL_HTML=$(CURDIR)/$(DIST)/ukitool.html node --test tests/e2e/dist.test.js
