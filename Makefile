# Claude Code for Mattermost: build, test and package.
#
#   make test         everything CI runs (bash .ci/run installs what is missing, then calls this)
#   make dist         dist/claude-code-<version>.tar.gz: static linux-amd64 + linux-arm64 executables
#                     and the webapp bundle
#   make webapp       webapp/dist/main.js (fails over its size budget, vite.config.ts)
#   make webapp-test  the webapp's unit tests (vitest) and its type check
#   make conformance  the Go cross-checks: gob, net/rpc, yamux and go-plugin against Go's own code,
#                     and the dist tarball loaded by Mattermost's real plugin host code
#   make conformance-ref  the same plugin checks against the Go reference plugin (validates them)
#   make e2e          the real Claude Code CLI against the scripted fake Messages API (protocol, engine,
#                     chat in-process) and the chat acceptance scenario (e2e-chat)
#   make e2e-chat     "Claude in the channel": the dist tarball under the real host code, the real
#                     CLI, the scripted fake Messages API (tests/conformance/chatscenario)
#   make e2e-cluster  the same on a simulated 3-node cluster (tests/conformance/cluster): forwarding,
#                     kill -9 of the owner, split brain, a short load bench, idle KV on a plain server;
#                     one test: make e2e-cluster CLUSTER_RUN=TestClusterSplitBrain
#   make bench-cluster  the cluster load bench at full length (20 sessions, 120 s) and 60 s idle windows
#   make bench        Rust against Go, same values, same run (gob codec, the whole plugin);
#                     engine: 50 sessions on a fake CLI; the real server (bench-server); the
#                     browser (bench-browser)
#   make bench-browser  the webapp in headless Chromium against a real server, React 18 and 19:
#                     CLI text line → text in the DOM (p50, p99), main.js against its budget
#   make fuzz-smoke   60 s of cargo-fuzz on the gob decoder
#   make e2e-server   the dist tarball in a REAL Mattermost server (built from the Go module proxy,
#                     PostgreSQL from Debian, both on 127.0.0.1), driven through /api/v4 and the
#                     websocket as people and System Console drive it (tests/conformance/realserver),
#                     and the webapp in headless Chromium against it (webapp/e2e, twice: React 18, 19)
#   make server       that server with the plugin installed and configured, until Ctrl-C
#   make deploy       install the tarball into a running Mattermost: MM_SERVICESETTINGS_SITEURL and
#                     MM_ADMIN_TOKEN (a system admin's personal access token)
#
# On a fresh machine `make test` installs what it needs (`make deps`): cargo-fuzz, the pinned
# Claude Code CLI, the cross toolchain, PostgreSQL, Chromium and file(1) through apt, the Go
# modules, the webapp's packages.

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

# The real Mattermost server (tests/mmserver): built once per machine into a cache directory that
# outlives clones and runs; later builds relink from Go's build cache in seconds.
MM_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/claude-code-e2e
MM_SERVER_BIN := $(MM_CACHE)/mattermost
# The server/v8 pseudo-version has no checksum-database entry; tests/mmserver/go.sum pins it.
MM_GOENV := GONOSUMDB=github.com/mattermost/mattermost GOFLAGS=-mod=mod
MM_SERVER_SRC = $(shell cd tests/mmserver && $(MM_GOENV) $(GO) list -m -f '{{.Dir}}' github.com/mattermost/mattermost/server/v8)

.PHONY: test deps lint unit conformance conformance-ref e2e e2e-chat e2e-chat-stub e2e-cluster bench-cluster e2e-server \
	mattermost-server postgresql server deploy bench bench-plugin bench-server bench-browser fuzz-smoke cargo-fuzz \
	claude-cli golden-cli dist cross-toolchain webapp webapp-test chromium browser-deps

test: deps lint unit webapp-test conformance e2e e2e-server fuzz-smoke bench

# Everything the suite needs that a fresh machine lacks; each step is skipped when present.
deps: cargo-fuzz claude-cli cross-toolchain postgresql mattermost-server browser-deps
	command -v file >/dev/null || { apt-get update && apt-get install -y file; }
	cd tests/conformance && $(GO) mod download

cargo-fuzz:
	cargo fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	rustup run nightly rustc --version

# PostgreSQL from Debian for the real server (the tests start their own cluster; the package's
# own service is not used).
postgresql:
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { apt-get update && apt-get install -y postgresql; }

# Debian's Chromium for the browser scenario (playwright-core drives it by its path; no browser
# is ever downloaded), as root or through sudo; the emoji font draws the tool rows in screenshots.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	test -x /usr/bin/chromium || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium fonts-noto-color-emoji; }
	/usr/bin/chromium --version

mattermost-server:
	@mkdir -p $(MM_CACHE)
	@state=$$([ -x $(MM_SERVER_BIN) ] && echo warm || echo cold); start=$$(date +%s%N); \
	(cd tests/mmserver && $(MM_GOENV) $(GO) build -o $(MM_SERVER_BIN) .); \
	secs=$$(( ($$(date +%s%N) - start) / 1000000 )); secs=$$(printf '%d.%03d' $$((secs / 1000)) $$((secs % 1000))); \
	[ $$state = cold ] && echo $$secs > $(MM_CACHE)/cold-build-seconds; \
	echo "mattermost server build: $$secs s this run ($$state); cold build on this machine: $$(cat $(MM_CACHE)/cold-build-seconds 2>/dev/null || echo unknown) s"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd tests/conformance && test -z "$$(gofmt -l .)" && $(GO) vet ./...

# Unit tests next to the code, the plugin driven from the host's side (in-process and the built
# binary over a hand-rolled yamux client), property tests, and the fake Messages API's own tests.
unit:
	$(CARGO) test --workspace --lib --bins
	$(CARGO) test --test plugin_inprocess --test plugin_process --test chat_authz --test api_v1 --test api_v1_files --test api_v1_events --test supervisor
	$(CARGO) test --release --test gob_proptest
	$(CARGO) test -p fake-anthropic

# chatscenario needs the real CLI and runs minutes: it is e2e-chat's, not part of these checks.
conformance: dist
	cd tests/conformance && CLAUDE_CODE_TARBALL=$(CURDIR)/$(DIST_TARBALL) $(GO) test -count=1 $$($(GO) list ./... | grep -v -e /chatscenario$$ -e /cluster$$ -e /realserver$$ -e /fakemodel$$)
	$(CARGO) test --test gob_corpus --test netrpc_go --test transport_interop

# Each real CLI holds ~200 MB: two at a time keep a 2-core CI box responsive.
e2e: $(CLAUDE_CLI) e2e-chat e2e-cluster
	CLAUDE_CLI=$(CURDIR)/$(CLAUDE_CLI) $(CARGO) test --test cli_real --test e2e_engine --test chat_inprocess --test chat_questions --test chat_attachments --test chat_dm --test chat_worktree -- --test-threads=2

# The acceptance scenario of "Claude in the channel": hooks driven as the server does, the real
# CLI, the fake model restarted per step on one port. Prints `chatscenario: N passed, M failed`.
FAKE_ANTHROPIC_BIN := $(TARGET_DIR)/debug/fake-anthropic
e2e-chat: dist $(CLAUDE_CLI)
	$(CARGO) build -p fake-anthropic --bin fake-anthropic
	cd tests/conformance && CLAUDE_CODE_TARBALL=$(CURDIR)/$(DIST_TARBALL) CLAUDE_CLI=$(CURDIR)/$(CLAUDE_CLI) \
		FAKE_ANTHROPIC=$(abspath $(FAKE_ANTHROPIC_BIN)) $(GO) test -count=1 -timeout 30m -v ./fakemodel ./chatscenario

# Issue 13: the plugin on a simulated cluster (harness.Cluster: one plugin process per node under
# the real host code, one shared FakeAPI, a cluster-event bus), the real CLI, the fake model. Lease
# of 6 s (the tests set MM_CLAUDE_CODE_LEASE_SECONDS). Prints the `cluster-bench:` lines.
# CLUSTER_RUN selects tests (go test -run): TestPlainServerIdleKV, TestClusterForwarding,
# TestClusterKillOwner, TestClusterOrphanTakenOverWithoutACall, TestClusterSplitBrain,
# TestClusterLoadUnderBusFaults,
# TestClusterLoadBench.
CLUSTER_RUN ?= .
CLUSTER_ENV = CLAUDE_CODE_TARBALL=$(CURDIR)/$(DIST_TARBALL) CLAUDE_CLI=$(CURDIR)/$(CLAUDE_CLI) \
	FAKE_ANTHROPIC=$(abspath $(FAKE_ANTHROPIC_BIN))
e2e-cluster: dist $(CLAUDE_CLI)
	$(CARGO) build -p fake-anthropic --bin fake-anthropic
	cd tests/conformance && $(CLUSTER_ENV) CLUSTER_BENCH_SECONDS=$${CLUSTER_BENCH_SECONDS:-20} \
		CLUSTER_IDLE_SECONDS=$${CLUSTER_IDLE_SECONDS:-30} $(GO) test -count=1 -timeout 30m -v -run '$(CLUSTER_RUN)' ./cluster
bench-cluster: dist $(CLAUDE_CLI)
	$(CARGO) build -p fake-anthropic --bin fake-anthropic
	cd tests/conformance && $(CLUSTER_ENV) CLUSTER_IDLE_LEASE_SECONDS=30 $(GO) test -count=1 -timeout 30m -v -run 'TestClusterLoadBench|TestPlainServerIdleKV' ./cluster

# The chat acceptance and the plugin's lifecycle in a real Mattermost server. Prints
# `e2e-server: N passed, M failed` and the server build times.
E2E_SERVER_ENV = MM_SERVER_BIN=$(MM_SERVER_BIN) MM_SERVER_SRC=$(MM_SERVER_SRC) \
	CLAUDE_CODE_TARBALL=$(CURDIR)/$(DIST_TARBALL) CLAUDE_CLI=$(CURDIR)/$(CLAUDE_CLI)
e2e-server: dist $(CLAUDE_CLI) postgresql mattermost-server browser-deps
	$(CARGO) build -p fake-anthropic --bin fake-anthropic
	cd tests/conformance && $(E2E_SERVER_ENV) FAKE_ANTHROPIC=$(abspath $(FAKE_ANTHROPIC_BIN)) \
		$(GO) test -count=1 -timeout 30m -v ./realserver

# The browser steps alone on a fresh server (realserver's TestBrowser): the scenario with React 18
# and 19, each printing CLI text → text in the DOM (p50, p99) and main.js against its budget;
# screenshots in target/e2e-browser/.
bench-browser: dist $(CLAUDE_CLI) postgresql mattermost-server browser-deps
	$(CARGO) build -p fake-anthropic --bin fake-anthropic
	cd tests/conformance && $(E2E_SERVER_ENV) FAKE_ANTHROPIC=$(abspath $(FAKE_ANTHROPIC_BIN)) E2E_BROWSER_ONLY=1 \
		$(GO) test -count=1 -timeout 30m -v -run '^TestBrowser$$' ./realserver

# A local real server with the plugin, to try it with a Mattermost client (desktop or mobile app).
# ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL) from the environment reach the plugin's settings.
server: dist $(CLAUDE_CLI) postgresql mattermost-server
	cd tests/conformance && $(E2E_SERVER_ENV) $(GO) run ./cmd/mmdev serve \
		-tarball $(CURDIR)/$(DIST_TARBALL) -cli $(CURDIR)/$(CLAUDE_CLI)

deploy: dist
	cd tests/conformance && $(GO) run ./cmd/mmdev deploy $(CURDIR)/$(DIST_TARBALL)

# The same scenario against its Go stand-in of the contract (chatscenario/chatstub): validates the
# scenario itself, needs no dist.
e2e-chat-stub: $(CLAUDE_CLI)
	$(CARGO) build -p fake-anthropic --bin fake-anthropic
	cd tests/conformance && CHATSCENARIO_STUB=1 CLAUDE_CLI=$(CURDIR)/$(CLAUDE_CLI) \
		FAKE_ANTHROPIC=$(abspath $(FAKE_ANTHROPIC_BIN)) $(GO) test -count=1 -timeout 30m -v ./chatscenario

# Without CLAUDE_CODE_TARBALL the plugin checks build and load the Go reference plugin.
conformance-ref:
	cd tests/conformance && $(GO) test -count=1 -v ./pluginconf

bench: bench-plugin bench-server bench-browser bench-cluster
	BENCH_SECONDS=$(BENCH_SECONDS) $(CARGO) bench --bench gob
	$(CARGO) bench --bench engine
	$(CARGO) bench --bench hooks

# The Rust plugin and the Go reference plugin in one run with the real host code.
bench-plugin: dist
	cd tests/conformance && $(GO) run ./cmd/pluginbench -rust $(CURDIR)/$(DIST_TARBALL)

# The real server, started once: CLI text line → live event on a websocket client (p50, p99),
# UpdatePost calls per 30 s turn, GET /sessions/{id} under 50 clients. The "before" figure of
# UpdatePost comes from the plugin as it was before the live events and the turn post's backoff
# (BENCH_BEFORE_REV, its fixed 1 s cadence), built from git in its own target directory and
# installed first in the same server; the dist tarball then replaces it. A checkout without
# that commit (a shallow clone) measures "after" only, and says so.
BENCH_BEFORE_REV ?= 63b4279
BENCH_BEFORE_DIR := target/bench-before
BENCH_BEFORE_TARBALL := $(BENCH_BEFORE_DIR)/claude-code-before.tar.gz
bench-server: dist $(CLAUDE_CLI) postgresql mattermost-server
	$(CARGO) build -p fake-anthropic --bin fake-anthropic
	if git cat-file -e $(BENCH_BEFORE_REV)^{commit} 2>/dev/null; then \
		rm -rf $(BENCH_BEFORE_DIR)/src $(BENCH_BEFORE_DIR)/pack && \
		mkdir -p $(BENCH_BEFORE_DIR)/src $(BENCH_BEFORE_DIR)/pack/claude-code/server/dist && \
		git archive $(BENCH_BEFORE_REV) | tar -x -C $(BENCH_BEFORE_DIR)/src && \
		(cd $(BENCH_BEFORE_DIR)/src && CARGO_TARGET_DIR=$(CURDIR)/$(BENCH_BEFORE_DIR)/target \
			$(CARGO) build --quiet --bin claude-code) && \
		cp $(BENCH_BEFORE_DIR)/src/plugin.json $(BENCH_BEFORE_DIR)/pack/claude-code/ && \
		for arch in amd64 arm64; do cp $(BENCH_BEFORE_DIR)/target/debug/claude-code \
			$(BENCH_BEFORE_DIR)/pack/claude-code/server/dist/plugin-linux-$$arch; done && \
		tar -C $(BENCH_BEFORE_DIR)/pack -czf $(BENCH_BEFORE_TARBALL) claude-code; \
	else echo "bench-server: $(BENCH_BEFORE_REV) is not in this checkout: no before figure"; \
		rm -f $(BENCH_BEFORE_TARBALL); fi
	cd tests/conformance && $(E2E_SERVER_ENV) FAKE_ANTHROPIC=$(abspath $(FAKE_ANTHROPIC_BIN)) \
		$(GO) run ./cmd/serverbench $$(test -f $(CURDIR)/$(BENCH_BEFORE_TARBALL) && echo -before $(CURDIR)/$(BENCH_BEFORE_TARBALL))

cross-toolchain: $(ZIG_STAMP)
	rustup target add $(MUSL_TARGETS)

$(ZIG_STAMP):
	rm -rf $(ZIG_TOOLS)
	python3 -m venv $(ZIG_TOOLS)
	$(ZIG_TOOLS)/bin/pip install --quiet cargo-zigbuild==$(CARGO_ZIGBUILD_VERSION) ziglang==$(ZIGLANG_VERSION)
	touch $@

# The webapp from its committed lockfile: `npm ci` only when node_modules is missing or older
# than the lockfile (npm writes node_modules/.package-lock.json on every install).
WEBAPP_INSTALLED := webapp/node_modules/.package-lock.json
$(WEBAPP_INSTALLED): webapp/package-lock.json
	cd webapp && npm ci --no-audit --no-fund
	touch $@

webapp: $(WEBAPP_INSTALLED)
	cd webapp && npm run build

# React 19 for the browser scenario's second run: its own package (react-dom 19 needs react 19
# as its peer, which the webapp's own React 18 cannot be).
WEBAPP_REACT19 := webapp/e2e/react19/node_modules/.package-lock.json
$(WEBAPP_REACT19): webapp/e2e/react19/package-lock.json
	cd webapp/e2e/react19 && npm ci --no-audit --no-fund
	touch $@

browser-deps: chromium $(WEBAPP_INSTALLED) $(WEBAPP_REACT19)

webapp-test: $(WEBAPP_INSTALLED)
	cd webapp && npm test && npm run typecheck

# The layout Mattermost's plugin upload expects: one top directory named after the plugin id.
# plugin.json names webapp/dist/main.js: without it the server refuses to enable the plugin.
dist: cross-toolchain webapp
	$(ZIGBUILD) --release --bin claude-code $(addprefix --target ,$(MUSL_TARGETS))
	rm -rf dist/stage
	mkdir -p dist/stage/claude-code/server/dist
	install -m 0644 plugin.json dist/stage/claude-code/plugin.json
	install -m 0755 $(TARGET_DIR)/x86_64-unknown-linux-musl/release/claude-code dist/stage/claude-code/server/dist/plugin-linux-amd64
	install -m 0755 $(TARGET_DIR)/aarch64-unknown-linux-musl/release/claude-code dist/stage/claude-code/server/dist/plugin-linux-arm64
	install -D -m 0644 webapp/dist/main.js dist/stage/claude-code/webapp/dist/main.js
	tar -C dist/stage --sort=name --owner=0 --group=0 --numeric-owner -czf $(DIST_TARBALL) claude-code
	rm -rf dist/stage
	ls -l $(DIST_TARBALL)

# Seeds: the Go-encoded corpus, so the fuzzer starts from real Mattermost traffic.
fuzz-smoke: cargo-fuzz
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
