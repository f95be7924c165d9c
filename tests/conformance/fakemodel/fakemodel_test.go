package fakemodel

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
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	m := New(bin, t.TempDir())
	defer m.Stop()
	post := func(prompt string) string {
		t.Helper()
		body := `{"model":"claude-fake","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"` + prompt + `"}]}`
		c := http.Client{Timeout: 20 * time.Second}
		resp, err := c.Post(m.URL+"/v1/messages", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if err := m.Start("one", []map[string]any{TextTurn("first answer", 0)}); err != nil {
		t.Fatal(err)
	}
	port, pid1 := m.port, m.Pid()
	if out := post("PING-ONE"); !strings.Contains(out, "first ") || !strings.Contains(out, "message_stop") {
		t.Fatalf("first stream: %s", out)
	}
	mark := m.Mark()
	if err := m.Start("two", []map[string]any{TextTurn("second answer", 10)}); err != nil {
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
	reqs := m.Requests()
	if len(reqs) != 2 || !strings.Contains(reqs[0].Text, "PING-ONE") || reqs[1].Kind != "stream" {
		t.Fatalf("requests %+v", reqs)
	}
	if s := m.Since(mark); len(s) != 1 || !strings.Contains(s[0].Text, "PING-TWO") {
		t.Fatalf("since(%d) = %+v", mark, s)
	}
	pid2 := m.Pid()
	m.Stop()
	if syscall.Kill(pid2, 0) == nil {
		t.Fatalf("the server (pid %d) survived stop", pid2)
	}
}
