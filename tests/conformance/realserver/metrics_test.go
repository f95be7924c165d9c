package realserver

import (
	"bufio"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"claudecode/conformance/steps"
)

// metricFamilies are the series issue 10 names (contract: "Metrics"), without the prefix.
var metricFamilies = []string{
	"sessions_active", "sessions_started_total", "turns_total", "messages_total", "cli_spawn_seconds",
	"first_text_seconds", "approval_wait_seconds", "approvals_total", "errors_total",
	"hook_duration_seconds", "outbox_backlog", "http_requests_total",
}

// promText is a Prometheus text exposition: the declared families and each sample's value.
type promText struct {
	families map[string]string  // name (without _total) → type
	samples  map[string]float64 // `name{labels}` as written → value
}

// A sample: name, labels (quoted values may hold braces: route="GET /sessions/{id}"), value.
var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?\s+(\S+)`)

func parseProm(t *testing.T, body string) promText {
	t.Helper()
	p := promText{families: map[string]string{}, samples: map[string]float64{}}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if parts := strings.Fields(f); len(parts) == 2 {
				p.families[strings.TrimSuffix(parts[0], "_total")] = parts[1]
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("not a Prometheus sample line: %q", line)
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Errorf("sample %q: value %q: %v", line, m[3], err)
		}
		p.samples[m[1]+m[2]] = v
	}
	return p
}

// sum adds the samples of a name whose labels contain every want (`key="value"`).
func (p promText) sum(name string, want ...string) (float64, bool) {
	total, found := 0.0, false
	for k, v := range p.samples {
		n, labels, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		all := true
		for _, w := range want {
			all = all && strings.Contains(labels, w)
		}
		if all {
			total, found = total+v, true
		}
	}
	return total, found
}

// GET /api/v1/metrics: for system admins the Prometheus text with every series of the issue,
// its values matching what the scenario did since the plugin started; 403 to anyone else.
func (w *world) stepAPIMetrics(t *testing.T) {
	s := w.session(t)
	w.call(t, w.api(w.member), http.StatusForbidden, "GET", "/metrics", nil)
	w.call(t, w.api(w.owner), http.StatusForbidden, "GET", "/metrics", nil)
	w.call(t, &APIClient{Site: w.srv.URL}, http.StatusUnauthorized, "GET", "/metrics", nil)
	resp := w.call(t, w.api(w.admin), http.StatusOK, "GET", "/metrics", nil)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") && !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("metrics Content-Type %q, want Prometheus text", ct)
	}
	p := parseProm(t, string(resp.Body))
	for _, f := range metricFamilies {
		if _, ok := p.families["claude_code_"+strings.TrimSuffix(f, "_total")]; !ok {
			t.Errorf("no series claude_code_%s (# TYPE line) in the metrics", f)
		}
	}

	// What the scenario did since the plugin started (install; no restart before this step):
	// one session, each turn closed with "✓ Done" in its thread, each card approved.
	turns, approved := 0, 0
	for _, post := range w.threadPosts(t) {
		if post.UserId != w.botID {
			continue
		}
		if steps.HasDoneLine(post.Message) {
			turns++
		}
		// An answered question is an approved request too (allowed with the answers).
		if strings.Contains(shown(post), "Approved by @") || strings.Contains(shown(post), "Answered by @") {
			approved++
		}
	}
	// The API approval of the live-events step closed its card with "Approved by @owner" too.
	check := func(what string, got float64, found bool, min float64) {
		t.Helper()
		if !found || got < min {
			t.Errorf("%s = %v (present %v), want ≥ %v", what, got, found, min)
		} else {
			t.Logf("%s = %v (scenario: ≥ %v)", what, got, min)
		}
	}
	exactly := func(what string, got float64, found bool, want float64) {
		t.Helper()
		if !found || got != want {
			t.Errorf("%s = %v (present %v), want %v: what the scenario did", what, got, found, want)
		}
	}
	v, ok := p.sum("claude_code_sessions_started_total")
	exactly("sessions_started_total", v, ok, 1)
	v, ok = p.sum("claude_code_sessions_active")
	exactly("sessions_active (the session "+s.ID+" is live)", v, ok, 1)
	v, ok = p.sum("claude_code_turns_total", `outcome="ok"`)
	exactly(`turns_total{outcome="ok"}`, v, ok, float64(turns))
	v, ok = p.sum("claude_code_approvals_total", `outcome="approved"`)
	exactly(`approvals_total{outcome="approved"}`, v, ok, float64(approved))
	v, ok = p.sum("claude_code_approvals_total", `outcome="denied"`)
	exactly(`approvals_total{outcome="denied"}`, v, ok, 1) // the deny-with-reason dialog
	v, ok = p.sum("claude_code_cli_spawn_seconds_count")
	check("cli_spawn_seconds_count", v, ok, 1)
	v, ok = p.sum("claude_code_first_text_seconds_count")
	check("first_text_seconds_count", v, ok, 1)
	v, ok = p.sum("claude_code_approval_wait_seconds_count")
	check("approval_wait_seconds_count", v, ok, float64(approved+1))
	v, ok = p.sum("claude_code_messages_total")
	check("messages_total", v, ok, float64(turns))
	v, ok = p.sum("claude_code_hook_duration_seconds_count")
	check("hook_duration_seconds_count (every hook)", v, ok, 10)
	v, ok = p.sum("claude_code_http_requests_total", `status="403"`)
	check(`http_requests_total{status="403"}`, v, ok, 5) // the refusals of the steps before
	v, ok = p.sum("claude_code_http_requests_total", `route="PUT /api/v1/sessions/{id}/files/{path...}"`, `status="409"`)
	exactly(`http_requests_total{route="PUT …/files/{path...}",status="409"}`, v, ok, 1) // the stale If-Match
	v, ok = p.sum("claude_code_http_requests_total", `status="200"`)
	check(`http_requests_total{status="200"}`, v, ok, 10)
	if v, ok := p.sum("claude_code_outbox_backlog"); !ok || v < 0 {
		t.Errorf("outbox_backlog = %v (present %v)", v, ok)
	}
}

// The parser reads what prometheus-client writes: label values with braces and quotes, the
// OpenMetrics "# EOF", counters declared without their _total.
func TestParseProm(t *testing.T) {
	p := parseProm(t, "# TYPE claude_code_turns counter\n"+
		`claude_code_turns_total{outcome="ok"} 9`+"\n"+
		`claude_code_http_requests_total{route="GET /api/v1/sessions/{id}",status="200"} 13`+"\n"+
		`claude_code_x{a="say \"}\" here"} 2.5`+"\n# EOF\n")
	if p.families["claude_code_turns"] != "counter" {
		t.Errorf("families %v", p.families)
	}
	if v, ok := p.sum("claude_code_http_requests_total", `route="GET /api/v1/sessions/{id}"`); !ok || v != 13 {
		t.Errorf("route with braces: %v %v (%v)", v, ok, p.samples)
	}
	if v, ok := p.sum("claude_code_x"); !ok || v != 2.5 {
		t.Errorf("escaped quote and brace in a label: %v %v", v, ok)
	}
}
