// Package fakemodel runs crates/fake-anthropic, the scripted fake of the Anthropic Messages API,
// for the Go scenarios (chatscenario under the host code, realserver on a real Mattermost server).
package fakemodel

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"claudecode/conformance/harness"
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Model drives the scripted fake Messages API (crates/fake-anthropic) as a child process.
//
// Every scenario step gets its own script: Start stops the previous server and starts a new
// one on the SAME port, so the base URL the plugin gave the long-lived CLI stays valid while each
// step is answered by exactly the turns it scripted (a step that fails half-way cannot shift the
// turns of the next). All servers append to one JSONL request log; Mark/Since select the
// requests of a step.
type Model struct {
	Dir     string // scripts and the request log
	LogPath string // JSONL, one line per request
	URL     string // the base URL for ANTHROPIC_BASE_URL, once started
	bin     string
	port    int
	cmd     *exec.Cmd
	steps   int
}

// Binary is $FAKE_ANTHROPIC or a fresh `cargo build -p fake-anthropic`.
func Binary() (string, error) {
	if p := os.Getenv("FAKE_ANTHROPIC"); p != "" {
		return filepath.Abs(p)
	}
	root := harness.RepoRoot()
	cmd := exec.Command("cargo", "build", "-p", "fake-anthropic", "--bin", "fake-anthropic")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cargo build -p fake-anthropic: %v\n%s", err, out)
	}
	target := os.Getenv("CARGO_TARGET_DIR")
	if target == "" {
		target = filepath.Join(root, "target")
	} else if !filepath.IsAbs(target) {
		target = filepath.Join(root, target)
	}
	bin := filepath.Join(target, "debug", "fake-anthropic")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("fake-anthropic not found after the build: %v", err)
	}
	return bin, nil
}

func New(bin, dir string) *Model {
	return &Model{bin: bin, Dir: dir, LogPath: filepath.Join(dir, "requests.jsonl")}
}

// Turn builders (crates/fake-anthropic/src/lib.rs script format).
func TextTurn(text string, delayMS int) map[string]any {
	return map[string]any{"kind": "message", "delay_ms": delayMS,
		"blocks": []any{map[string]any{"type": "text", "text": text}}}
}

// WriteTurn scripts a Write. The tool_use id is explicit and random: the fake derives default ids
// from its request counter, which restarts with every per-step server, and a repeated id in one
// conversation makes the CLI treat the later tool use as interrupted.
func WriteTurn(path, content string) map[string]any {
	return map[string]any{"kind": "message", "blocks": []any{map[string]any{
		"type": "tool_use", "id": "toolu_scn_" + randomHex(8), "name": "Write",
		"input": map[string]any{"file_path": path, "content": content}}}}
}

// start replaces the running server by one serving turns; the first start picks a free port,
// later ones reuse it.
func (m *Model) Start(name string, turns []map[string]any) error {
	m.Stop()
	m.steps++
	if turns == nil {
		turns = []map[string]any{}
	}
	script := filepath.Join(m.Dir, fmt.Sprintf("script-%02d-%s.json", m.steps, name))
	b, err := json.MarshalIndent(turns, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(script, b, 0o644); err != nil {
		return err
	}
	// The port was just released by the previous server; retry a bind failure for a while.
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = m.StartOnce(script)
		if err == nil || !strings.Contains(err.Error(), "binding") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (m *Model) StartOnce(script string) error {
	cmd := exec.Command(m.bin, "--log", m.LogPath, "--port", strconv.Itoa(m.port), script)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := os.Create(script + ".stderr")
	if err != nil {
		return err
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", m.bin, err)
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		} else {
			line <- ""
		}
		for s.Scan() { // keep draining
		}
	}()
	var first string
	select {
	case first = <-line:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("fake-anthropic printed no URL within 30 s")
	}
	u, err := url.Parse(strings.TrimSpace(first))
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		errText, _ := os.ReadFile(script + ".stderr")
		return fmt.Errorf("fake-anthropic: first stdout line %q is not its URL; stderr: %s", first, errText)
	}
	port, _ := strconv.Atoi(u.Port())
	if m.port != 0 && port != m.port {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("fake-anthropic listens on %d, want %d", port, m.port)
	}
	m.port, m.URL, m.cmd = port, strings.TrimSpace(first), cmd
	return nil
}

// stop ends the running server (SIGTERM, then SIGKILL after 5 s).
func (m *Model) Stop() {
	if m.cmd == nil {
		return
	}
	cmd := m.cmd
	m.cmd = nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (m *Model) Pid() int {
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Request is one logged POST /v1/messages that consumed a script turn.
type Request struct {
	Seq    int
	Kind   string
	Text   string  // every string inside the request body, newline-joined (JSON escaping undone)
	Body   any     // the request body as JSON decoded it
	Images []Image // the image blocks of its messages, in order
}

// Image is an image block as the fake logs it: its bytes by length and sha256 (hex).
type Image struct {
	Message   int    `json:"message"` // index in the request's messages
	MediaType string `json:"media_type"`
	Bytes     int    `json:"bytes"`
	SHA256    string `json:"sha256"`
}

// requests parses the log (a torn last line is skipped: it is still being written).
func (m *Model) Requests() []Request {
	b, err := os.ReadFile(m.LogPath)
	if err != nil {
		return nil
	}
	var out []Request
	for _, line := range strings.Split(string(b), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		kind, _ := rec["kind"].(string)
		if kind != "stream" && kind != "non_stream" {
			continue
		}
		seq, _ := rec["seq"].(float64)
		var sb strings.Builder
		collectStrings(rec["body"], &sb)
		var images struct {
			Images []Image `json:"images"`
		}
		_ = json.Unmarshal([]byte(line), &images)
		out = append(out, Request{Seq: int(seq), Kind: kind, Text: sb.String(), Body: rec["body"], Images: images.Images})
	}
	return out
}

func collectStrings(v any, sb *strings.Builder) {
	switch x := v.(type) {
	case string:
		sb.WriteString(x)
		sb.WriteByte('\n')
	case []any:
		for _, e := range x {
			collectStrings(e, sb)
		}
	case map[string]any:
		for _, e := range x {
			collectStrings(e, sb)
		}
	}
}

// mark is the number of model requests logged so far.
func (m *Model) Mark() int { return len(m.Requests()) }

// since returns the model requests after a mark.
func (m *Model) Since(mark int) []Request {
	r := m.Requests()
	if mark > len(r) {
		return nil
	}
	return r[mark:]
}

// ToolResult is what the CLI sent the model for one tool_use: the tool_result's text (its string
// content, or its text blocks joined) and whether it is an error.
type ToolResult struct {
	Text    string
	IsError bool
}

// ToolResult finds, in the model requests after mark, the tool_result answering the tool_use id.
func (m *Model) ToolResult(mark int, id string) (ToolResult, bool) {
	for _, r := range m.Since(mark) {
		body, _ := r.Body.(map[string]any)
		messages, _ := body["messages"].([]any)
		for _, msg := range messages {
			message, _ := msg.(map[string]any)
			content, _ := message["content"].([]any)
			for _, c := range content {
				block, _ := c.(map[string]any)
				if block["type"] != "tool_result" || block["tool_use_id"] != id {
					continue
				}
				isError, _ := block["is_error"].(bool)
				return ToolResult{Text: resultText(block["content"]), IsError: isError}, true
			}
		}
	}
	return ToolResult{}, false
}

// resultText is a tool_result's content as text: a string as it is, a list's text blocks joined.
func resultText(content any) string {
	if s, ok := content.(string); ok {
		return s
	}
	var parts []string
	list, _ := content.([]any)
	for _, c := range list {
		if block, _ := c.(map[string]any); block["type"] == "text" {
			text, _ := block["text"].(string)
			parts = append(parts, text)
		}
	}
	return strings.Join(parts, "\n")
}
