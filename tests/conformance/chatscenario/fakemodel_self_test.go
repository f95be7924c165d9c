package chatscenario

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The scenario's plumbing without the plugin: the fake Messages API starts, answers a streamed
// request, restarts on the same port with the next script, and logs both requests.
func TestFakeModelLifecycle(t *testing.T) {
	bin, err := fakeBinary()
	if err != nil {
		t.Fatal(err)
	}
	m := newFakeModel(bin, t.TempDir())
	defer m.stop()
	post := func(prompt string) string {
		t.Helper()
		body := `{"model":"claude-fake","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"` + prompt + `"}]}`
		c := http.Client{Timeout: 20 * time.Second}
		resp, err := c.Post(m.url+"/v1/messages", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if err := m.start("one", []map[string]any{textTurn("first answer", 0)}); err != nil {
		t.Fatal(err)
	}
	port, pid1 := m.port, m.pid()
	if out := post("PING-ONE"); !strings.Contains(out, "first ") || !strings.Contains(out, "message_stop") {
		t.Fatalf("first stream: %s", out)
	}
	mark := m.mark()
	if err := m.start("two", []map[string]any{textTurn("second answer", 10)}); err != nil {
		t.Fatal(err)
	}
	if m.port != port {
		t.Fatalf("restarted on port %d, want %d", m.port, port)
	}
	if syscall.Kill(pid1, 0) == nil {
		t.Fatalf("the first server (pid %d) still runs", pid1)
	}
	if out := post("PING-TWO"); !strings.Contains(out, "second ") {
		t.Fatalf("second stream: %s", out)
	}
	reqs := m.requests()
	if len(reqs) != 2 || !strings.Contains(reqs[0].Text, "PING-ONE") || reqs[1].Kind != "stream" {
		t.Fatalf("requests %+v", reqs)
	}
	if s := m.since(mark); len(s) != 1 || !strings.Contains(s[0].Text, "PING-TWO") {
		t.Fatalf("since(%d) = %+v", mark, s)
	}
	pid2 := m.pid()
	m.stop()
	if syscall.Kill(pid2, 0) == nil {
		t.Fatalf("the server (pid %d) survived stop", pid2)
	}
}
