# Claude Code for Mattermost: build, test and package.
#
#   make test         everything CI runs (bash .ci/run installs what is missing, then calls this)
#   make dist         dist/claude-code-<version>.tar.gz: static linux-amd64 + linux-arm64 executables
#   make conformance  the Go cross-checks: gob, net/rpc, yamux and go-plugin against Go's own code,
#                     and the dist tarball loaded by Mattermost's real plugin host code
#   make conformance-ref  the same plugin checks against the Go reference plugin (validates them)
#   make e2e          the real Claude Code CLI against the scripted fake Messages API (protocol, engine,
#                     chat in-process) and the chat acceptance scenario (e2e-chat)
#   make e2e-chat     "Claude in the channel": the dist tarball under the real host code, the real
#                     CLI, the scripted fake Messages API (tests/conformance/chatscenario)
#   make bench        Rust against Go, same values, same run (gob codec, the whole plugin);
#                     engine: 50 sessions on a fake CLI
#   make fuzz-smoke   60 s of cargo-fuzz on the gob decoder

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
GO ?= go

# The real Claude Code CLI, pinned: tests/fixtures/cli/*.jsonl were recorded from this exact
# version and tests/cli_real.rs drives it. Bumping it means re-recording the fixtures.
CLAUDE_CLI_VERSION ?= 2.1.330
CLAUDE_CLI := tools/claude/node_modules/.bin/claude


FUZZ_SECONDS ?= 60
BENCH_SECONDS ?= 2

# The version comes from plugin.json (build.rs keeps Cargo.toml equal to it).
VERSION := $(shell sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' plugin.json)
DIST_TARBALL := dist/claude-code-$(VERSION).tar.gz
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

# Static (musl) executables for both server architectures. Zig is the C compiler and linker for
# both targets (through cargo-zigbuild), so C dependencies such as bundled SQLite cross-compile
# too. Both come as PyPI wheels into a venv under tools/ (no download at build time after that).
MUSL_TARGETS := x86_64-unknown-linux-musl aarch64-unknown-linux-musl
ZIGLANG_VERSION ?= 0.17.0
CARGO_ZIGBUILD_VERSION ?= 0.24.0
ZIG_TOOLS := tools/zig
ZIG_STAMP := $(ZIG_TOOLS)/.installed-$(CARGO_ZIGBUILD_VERSION)-$(ZIGLANG_VERSION)
ZIGBUILD := PATH="$(CURDIR)/$(ZIG_TOOLS)/bin:$$PATH" $(CARGO) zigbuild

.PHONY: test lint unit conformance conformance-ref e2e e2e-chat e2e-chat-stub bench bench-plugin fuzz-smoke claude-cli golden-cli dist cross-toolchain

test: lint unit conformance e2e fuzz-smoke bench

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd tests/conformance && test -z "$$(gofmt -l .)" && $(GO) vet ./...

# Unit tests next to the code, the plugin driven from the host's side (in-process and the built
# binary over a hand-rolled yamux client), property tests, and the fake Messages API's own tests.
unit:
	$(CARGO) test --workspace --lib --bins
	$(CARGO) test --test plugin_inprocess --test plugin_process
	$(CARGO) test --release --test gob_proptest
	$(CARGO) test -p fake-anthropic

# chatscenario needs the real CLI and runs minutes: it is e2e-chat's, not part of these checks.
conformance: dist
	cd tests/conformance && CLAUDE_CODE_TARBALL=$(CURDIR)/$(DIST_TARBALL) $(GO) test -count=1 $$($(GO) list ./... | grep -v /chatscenario$$)
	$(CARGO) test --test gob_corpus --test netrpc_go --test transport_interop

# Each real CLI holds ~200 MB: two at a time keep a 2-core CI box responsive.
e2e: $(CLAUDE_CLI) e2e-chat
	CLAUDE_CLI=$(CURDIR)/$(CLAUDE_CLI) $(CARGO) test --test cli_real --test e2e_engine --test chat_inprocess -- --test-threads=2

# The acceptance scenario of "Claude in the channel": hooks driven as the server does, the real
# CLI, the fake model restarted per step on one port. Prints `chatscenario: N passed, M failed`.
FAKE_ANTHROPIC_BIN := $(TARGET_DIR)/debug/fake-anthropic
e2e-chat: dist $(CLAUDE_CLI)
	$(CARGO) build -p fake-anthropic --bin fake-anthropic
	cd tests/conformance && CLAUDE_CODE_TARBALL=$(CURDIR)/$(DIST_TARBALL) CLAUDE_CLI=$(CURDIR)/$(CLAUDE_CLI) \
		FAKE_ANTHROPIC=$(abspath $(FAKE_ANTHROPIC_BIN)) $(GO) test -count=1 -timeout 30m -v ./chatscenario

# The same scenario against its Go stand-in of the contract (chatscenario/chatstub): validates the
# scenario itself, needs no dist.
e2e-chat-stub: $(CLAUDE_CLI)
	$(CARGO) build -p fake-anthropic --bin fake-anthropic
	cd tests/conformance && CHATSCENARIO_STUB=1 CLAUDE_CLI=$(CURDIR)/$(CLAUDE_CLI) \
		FAKE_ANTHROPIC=$(abspath $(FAKE_ANTHROPIC_BIN)) $(GO) test -count=1 -timeout 30m -v ./chatscenario

# Without CLAUDE_CODE_TARBALL the plugin checks build and load the Go reference plugin.
conformance-ref:
	cd tests/conformance && $(GO) test -count=1 -v ./pluginconf

bench: bench-plugin
	BENCH_SECONDS=$(BENCH_SECONDS) $(CARGO) bench --bench gob
	$(CARGO) bench --bench engine

# The Rust plugin and the Go reference plugin in one run with the real host code.
bench-plugin: dist
	cd tests/conformance && $(GO) run ./cmd/pluginbench -rust $(CURDIR)/$(DIST_TARBALL)

cross-toolchain: $(ZIG_STAMP)
	rustup target add $(MUSL_TARGETS)

$(ZIG_STAMP):
	rm -rf $(ZIG_TOOLS)
	python3 -m venv $(ZIG_TOOLS)
	$(ZIG_TOOLS)/bin/pip install --quiet cargo-zigbuild==$(CARGO_ZIGBUILD_VERSION) ziglang==$(ZIGLANG_VERSION)
	touch $@

# The layout Mattermost's plugin upload expects: one top directory named after the plugin id.
# webapp/dist/main.js goes in once the webapp exists.
dist: cross-toolchain
	$(ZIGBUILD) --release --bin claude-code $(addprefix --target ,$(MUSL_TARGETS))
	rm -rf dist/stage
	mkdir -p dist/stage/claude-code/server/dist
	install -m 0644 plugin.json dist/stage/claude-code/plugin.json
	install -m 0755 $(TARGET_DIR)/x86_64-unknown-linux-musl/release/claude-code dist/stage/claude-code/server/dist/plugin-linux-amd64
	install -m 0755 $(TARGET_DIR)/aarch64-unknown-linux-musl/release/claude-code dist/stage/claude-code/server/dist/plugin-linux-arm64
	if [ -f webapp/dist/main.js ]; then install -D -m 0644 webapp/dist/main.js dist/stage/claude-code/webapp/dist/main.js; fi
	tar -C dist/stage --sort=name --owner=0 --group=0 --numeric-owner -czf $(DIST_TARBALL) claude-code
	rm -rf dist/stage
	ls -l $(DIST_TARBALL)

# Seeds: the Go-encoded corpus, so the fuzzer starts from real Mattermost traffic.
fuzz-smoke:
	mkdir -p fuzz/corpus/gob_decode
	cd tests/conformance && $(GO) run ./cmd/gobcorpus gen -out ../../fuzz/corpus/gob_decode > /dev/null
	rm -f fuzz/corpus/gob_decode/*.json
	$(CARGO) +nightly fuzz run gob_decode -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -malloc_limit_mb=512

claude-cli: $(CLAUDE_CLI)

# npm warns that the package wants node >= 22; the native binary it ships runs regardless.
$(CLAUDE_CLI):
	mkdir -p tools/claude
	npm install --prefix tools/claude --no-audit --no-fund @anthropic-ai/claude-code@$(CLAUDE_CLI_VERSION)
	test -x $(CLAUDE_CLI)
	$(CLAUDE_CLI) --version

# Re-record the golden stdout transcripts from the real CLI against the fake Messages API.
golden-cli: $(CLAUDE_CLI)
	CLAUDE_CLI=$(CURDIR)/$(CLAUDE_CLI) $(CARGO) test --test cli_real -- --ignored record_golden_transcripts --nocapture
