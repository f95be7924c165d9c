# Claude Code for Mattermost: build, test and package.
#
#   make test         everything CI runs (bash .ci/run installs what is missing, then calls this)
#   make conformance  the Go cross-checks: gob, net/rpc, yamux and go-plugin against Go's own code
#   make e2e          the real Claude Code CLI against the scripted fake Messages API (protocol + engine)
#   make bench        gob: Rust against Go, same values, same run; engine: 50 sessions on a fake CLI
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

.PHONY: test lint unit conformance e2e bench fuzz-smoke claude-cli golden-cli

test: lint unit conformance e2e fuzz-smoke bench

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd tests/conformance && test -z "$$(gofmt -l .)" && $(GO) vet ./...

# Unit tests next to the code, property tests, and the fake Messages API's own tests.
unit:
	$(CARGO) test --workspace --lib --bins
	$(CARGO) test --release --test gob_proptest
	$(CARGO) test -p fake-anthropic

conformance:
	cd tests/conformance && $(GO) test ./...
	$(CARGO) test --test gob_corpus --test netrpc_go --test transport_interop

# Each real CLI holds ~200 MB: two at a time keep a 2-core CI box responsive.
e2e: $(CLAUDE_CLI)
	CLAUDE_CLI=$(CURDIR)/$(CLAUDE_CLI) $(CARGO) test --test cli_real --test e2e_engine -- --test-threads=2

bench:
	BENCH_SECONDS=$(BENCH_SECONDS) $(CARGO) bench --bench gob
	$(CARGO) bench --bench engine

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
