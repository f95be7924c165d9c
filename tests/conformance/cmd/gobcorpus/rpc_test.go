package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRPCRecordSelfConsistent decodes the recorded streams with the generic
// wire decoder and checks them against rpc_calls.json.
func TestRPCRecordSelfConsistent(t *testing.T) {
	dir := t.TempDir()
	if err := rpcRecord(dir); err != nil {
		t.Fatal(err)
	}
	var calls []map[string]json.RawMessage
	b, _ := os.ReadFile(filepath.Join(dir, "rpc_calls.json"))
	if err := json.Unmarshal(b, &calls); err != nil {
		t.Fatal(err)
	}
	reqs, _ := os.ReadFile(filepath.Join(dir, "rpc_requests.gob"))
	resps, _ := os.ReadFile(filepath.Join(dir, "rpc_responses.gob"))
	rq := newWireDecoder(bytes.NewReader(reqs))
	rs := newWireDecoder(bytes.NewReader(resps))
	next := func(d *wireDecoder, what string) any {
		v, err := d.Next()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		n, _ := normJSON(v)
		return n
	}
	for i, c := range calls {
		var method, errText string
		json.Unmarshal(c["service_method"], &method)
		json.Unmarshal(c["error"], &errText)
		wantHdr := map[string]any{"ServiceMethod": method}
		if i > 0 {
			wantHdr["Seq"] = i
		}
		hdr := next(rq, "request header")
		if d := dumpsEqual(mustNorm(wantHdr), hdr, "$"); d != "" {
			t.Errorf("call %d request header: %s", i, d)
		}
		arg, _ := parseJSON(c["arg"])
		if d := dumpsEqual(arg, next(rq, "request body"), "$"); d != "" {
			t.Errorf("call %d arg: %s", i, d)
		}
		if errText != "" {
			wantHdr["Error"] = errText
		}
		if d := dumpsEqual(mustNorm(wantHdr), next(rs, "response header"), "$"); d != "" {
			t.Errorf("call %d response header: %s", i, d)
		}
		body := next(rs, "response body")
		reply, _ := parseJSON(c["reply"])
		if errText != "" {
			reply = mustNorm(map[string]any{}) // net/rpc sends struct{}{} after an error
		}
		if d := dumpsEqual(reply, body, "$"); d != "" {
			t.Errorf("call %d reply: %s", i, d)
		}
	}
	if _, err := rq.Next(); err == nil {
		t.Error("extra data in requests")
	}
	if _, err := rs.Next(); err == nil {
		t.Error("extra data in responses")
	}
}

func mustNorm(v any) any {
	n, err := normJSON(v)
	if err != nil {
		panic(err)
	}
	return n
}

// TestRPCEchoGoGo runs rpc-client against the Go rpc-server.
func TestRPCEchoGoGo(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "echo.sock")
	done := make(chan error, 1)
	go func() { done <- rpcServe(sock) }()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var out bytes.Buffer
	failed, err := rpcClientCheck(&out, sock)
	if err != nil || failed != 0 || !strings.Contains(out.String(), " passed, 0 failed") {
		t.Fatalf("failed=%d err=%v\n%s", failed, err, out.String())
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("rpc-server did not exit after the client closed")
	}
}

func TestBenchRuns(t *testing.T) {
	dir := t.TempDir()
	if err := genCorpus(dir); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := bench(&out, dir, 0.02); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 lines, got:\n%s", out.String())
	}
	for _, l := range lines {
		var r benchResult
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.NsPerOp <= 0 || r.BytesPerOp <= 0 || r.Lang != "go" {
			t.Errorf("bad line %s (%v)", l, err)
		}
	}
}
