package realserver

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/harness"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

// Issue 11 in a real browser: headless Chromium (Debian's) driven by webapp/e2e/run.ts on a
// harness page that is served same-origin with a proxy to this server, logs in as the owner,
// loads the plugin's bundle from the server and connects the real websocket. The runner asks
// this step, over a control server on 127.0.0.1, to script the fake model for each phase, to
// decide a card as the second user, to change a file behind the editor's back and to check the
// disk and the model's requests; it answers in its own words when a check fails. The step then
// reports the runner's failures, the benchmark and the screenshots.

// browserTimeout bounds one whole run of the scenario (about a minute when it passes).
const browserTimeout = 10 * time.Minute

// TestBrowser runs only the browser steps on a fresh server (`make bench-browser`); TestRealServer
// runs them among the others.
func TestBrowser(t *testing.T) {
	if os.Getenv("E2E_BROWSER_ONLY") == "" {
		t.Skip("part of TestRealServer; E2E_BROWSER_ONLY=1 (make bench-browser) runs the browser steps alone")
	}
	w := newWorld(t)
	if !counter.Check(t, "install_enable_before_configuration", w.stepInstall) {
		t.Fatal("the plugin does not run on the server")
	}
	counter.Check(t, "webapp_browser_react18", w.stepBrowserReact18)
	counter.Check(t, "webapp_browser_react19", w.stepBrowserReact19)
}

// The same scenario with the globals of Mattermost 10/11 (React 18) and of 12 (React 19).
func (w *world) stepBrowserReact18(t *testing.T) { w.browser(t, 18) }
func (w *world) stepBrowserReact19(t *testing.T) { w.browser(t, 19) }

// browserRun is one run's channel, project and what each phase scripted.
type browserRun struct {
	w       *world
	t       *testing.T
	channel *model.Channel
	root    string
	proxy   *ReleaseProxy
	mark    int                // the model's request log before the deny phase
	files   map[string]string  // phase → the file its Write names
	reason  string             // the deny phase's reason
	asks    map[string]askWant // phase → how the model must hear the question's or plan's answer
}

// browserRequest is one request of the runner, answered on the test's goroutine (t.Fatal and
// the world's helpers belong there).
type browserRequest struct {
	action string
	body   map[string]any
	reply  chan browserReply
}

type browserReply struct {
	status int
	body   any
}

// browserResult is run.ts's closing `E2E-RESULT` line.
type browserResult struct {
	Passed []string `json:"passed"`
	Failed []struct {
		Step  string `json:"step"`
		Error string `json:"error"`
	} `json:"failed"`
	PageErrors []string `json:"pageErrors"`
	Shots      []struct {
		Name string `json:"name"`
		Path string `json:"path"`
	} `json:"shots"`
	Bench  map[string]any `json:"bench"`
	MainJS *struct {
		URL    string `json:"url"`
		Bytes  int    `json:"bytes"`
		Budget int    `json:"budget"`
	} `json:"mainJs"`
	Seconds float64 `json:"seconds"`
}

// browserTools fails the step with what to run when Chromium or the harness's packages are missing.
func browserTools(t *testing.T, webapp string, react int) string {
	t.Helper()
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	need := []string{chromium, filepath.Join(webapp, "node_modules", ".bin", "vite-node"), filepath.Join(webapp, "node_modules", "playwright-core")}
	if react == 19 {
		need = append(need, filepath.Join(webapp, "e2e", "react19", "node_modules", "react-dom"))
	}
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: run `make browser-deps` (Debian's chromium, the webapp's packages, React 19 for the second run)", p)
		}
	}
	return chromium
}

func (w *world) browser(t *testing.T, react int) {
	webapp := filepath.Join(harness.RepoRoot(), "webapp")
	chromium := browserTools(t, webapp, react)
	name := fmt.Sprintf("browser-react%d", react)
	r := &browserRun{w: w, t: t, files: map[string]string{}, asks: map[string]askWant{}, root: filepath.Join(w.base, name)}
	if err := os.MkdirAll(r.root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.root, "README.md"), []byte("# "+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if r.proxy, err = StartReleaseProxy(w.model.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.proxy.Close)
	if r.channel, _, err = w.owner.client.CreateChannel(w.ctx, &model.Channel{TeamId: w.team.Id, Name: name, DisplayName: name, Type: model.ChannelTypeOpen}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.owner.client.AddChannelMember(w.ctx, r.channel.Id, w.member.user.Id); err != nil {
		t.Fatal(err)
	}
	// This run's project is an allowed root of its own (the panel offers the roots); the second
	// user may decide cards; the CLI talks to the fake through the proxy that times each chunk.
	if err := Configure(w.ctx, w.admin.client, w.settings(map[string]any{
		"AllowedProjectRoots": w.roots + "\n" + r.root,
		"WhoCanApprove":       "members",
		"AnthropicBaseUrl":    r.proxy.URL,
	})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.stopSession()
		if err := Configure(w.ctx, w.admin.client, w.settings(nil)); err != nil {
			t.Errorf("restoring the settings: %v", err)
		}
	})

	requests := make(chan browserRequest)
	control, err := serveControl(requests)
	if err != nil {
		t.Fatal(err)
	}
	defer control.Close()
	shots := filepath.Join(w.base, name+"-screenshots")
	cfg := map[string]any{
		"server": w.srv.URL, "control": "http://" + control.Addr().String(), "react": react,
		"login": w.owner.name, "password": password, "channelId": r.channel.Id, "pluginId": PluginID,
		"projectRoot": r.root, "shotsDir": shots,
	}
	cfgPath := filepath.Join(w.base, name+".json")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(cfg); os.WriteFile(cfgPath, b, 0o644) != nil {
		t.Fatal("writing the runner's config")
	}

	started := time.Now()
	cmd := exec.Command(filepath.Join(webapp, "node_modules", ".bin", "vite-node"), "e2e/run.ts", cfgPath)
	cmd.Dir = webapp
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Chromium is the runner's child: on the way out the whole group goes.
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(stdout)
		s.Buffer(make([]byte, 1<<20), 16<<20)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()

	var res *browserResult
	deadline := time.After(browserTimeout)
	for open := true; open; {
		select {
		case req := <-requests:
			req.reply <- r.handle(req.action, req.body)
		case line, ok := <-lines:
			if !ok {
				open = false
				break
			}
			if js, found := strings.CutPrefix(line, "E2E-RESULT "); found {
				res = &browserResult{}
				if err := json.Unmarshal([]byte(js), res); err != nil {
					t.Errorf("the runner's result line: %v", err)
				}
			} else {
				t.Log(line)
			}
		case <-deadline:
			t.Fatalf("the browser scenario did not end within %v", browserTimeout)
		}
	}
	waitErr := cmd.Wait()
	took := time.Since(started).Round(100 * time.Millisecond)
	if res == nil {
		t.Fatalf("the runner ended (%v) without a result after %v; stderr:\n%s", waitErr, took, tailOf(stderr.String(), 40))
	}
	for _, f := range res.Failed {
		t.Errorf("%s: %s", f.Step, f.Error)
	}
	if len(res.Failed) == 0 && waitErr != nil {
		t.Errorf("the runner reported no failure but exited with %v; stderr:\n%s", waitErr, tailOf(stderr.String(), 40))
	}
	r.report(res, took, shots)
}

// report prints the numbers and copies the screenshots to target/e2e-browser/react<N>/, a path
// that outlives the run's directory.
func (r *browserRun) report(res *browserResult, took time.Duration, shots string) {
	t := r.t
	name := filepath.Base(r.root)
	t.Logf("%s: %d steps passed, %d failed, in %v (the runner %.1f s)", name, len(res.Passed), len(res.Failed), took, res.Seconds)
	if res.MainJS != nil {
		fmt.Printf("e2e-browser %s: main.js as served %d bytes, budget %d bytes (%.1f%%)\n", name, res.MainJS.Bytes, res.MainJS.Budget, 100*float64(res.MainJS.Bytes)/float64(res.MainJS.Budget))
	}
	if line, ok := res.Bench["line"].(string); ok {
		fmt.Printf("e2e-browser %s: %s\n", name, line)
	}
	stable := filepath.Join(harness.RepoRoot(), "target", "e2e-browser", strings.TrimPrefix(name, "browser-"))
	if err := os.MkdirAll(stable, 0o755); err != nil {
		t.Error(err)
		return
	}
	for _, s := range res.Shots {
		b, err := os.ReadFile(s.Path)
		if err == nil {
			err = os.WriteFile(filepath.Join(stable, filepath.Base(s.Path)), b, 0o644)
		}
		if err != nil {
			t.Errorf("screenshot %s: %v", s.Name, err)
		}
	}
	t.Logf("screenshots: %s (copied to %s)", shots, stable)
}

// serveControl answers the runner's POST /<action> with a JSON body by handing each request to
// the test's goroutine.
func serveControl(requests chan<- browserRequest) (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		_ = http.Serve(l, http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
			var body map[string]any
			if b, err := io.ReadAll(req.Body); err != nil || json.Unmarshal(b, &body) != nil {
				http.Error(rw, "want a JSON object", http.StatusBadRequest)
				return
			}
			reply := make(chan browserReply, 1)
			requests <- browserRequest{action: strings.TrimPrefix(req.URL.Path, "/"), body: body, reply: reply}
			got := <-reply
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(got.status)
			_ = json.NewEncoder(rw).Encode(got.body)
		}))
	}()
	return l, nil
}

func failed(err error) browserReply {
	return browserReply{http.StatusConflict, map[string]string{"error": err.Error()}}
}

func ok(body any) browserReply { return browserReply{http.StatusOK, body} }

// handle runs one of the runner's requests: script a phase, act as the second user, touch or
// check the disk and the model's requests, compute the benchmark.
func (r *browserRun) handle(action string, body map[string]any) browserReply {
	phase, _ := body["phase"].(string)
	switch action {
	case "script":
		return r.script(phase)
	case "decide":
		return r.decideAsMember()
	case "touch":
		path := filepath.Join(r.root, r.files["edit"])
		if err := os.WriteFile(path, []byte("changed on disk\n"), 0o644); err != nil {
			return failed(err)
		}
		return ok(map[string]string{"path": path})
	case "check":
		if err := r.check(phase); err != nil {
			return failed(err)
		}
		return ok(map[string]string{})
	case "bench":
		seen, _ := body["seen"].(map[string]any)
		return r.bench(seen)
	}
	return failed(fmt.Errorf("no such action %q", action))
}

// words are n distinct words of one width (none is a part of another), the turn's text with them.
func words(prefix string, n int) ([]string, string) {
	marker := prefix + steps.RandHex(2)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", marker, i)
	}
	return out, "Browser report: " + strings.Join(out, " ") + " end."
}

func (r *browserRun) script(phase string) browserReply {
	w, t := r.w, r.t
	file := func(stem string) string {
		r.files[phase] = stem + "-" + steps.RandHex(3) + ".txt"
		return r.files[phase]
	}
	write := func(name, content string) []map[string]any {
		return []map[string]any{fakemodel.WriteTurn(filepath.Join(r.root, name), content), fakemodel.TextTurn("Done with "+name+".", 10)}
	}
	switch phase {
	case "start":
		w.script(t, "browser-start")
		return ok(map[string]any{})
	case "stream", "reconnect":
		// ~6 s of text, one word every 100 ms (the benchmark's cadence, as cmd/serverbench's).
		ws, text := words(map[string]string{"stream": "s", "reconnect": "r"}[phase], 60)
		w.script(t, "browser-"+phase, fakemodel.TextTurn(text, 100))
		return ok(map[string]any{"words": ws, "text": text})
	case "edit":
		name := file("edit-me")
		w.script(t, "browser-edit", write(name, "written by the model\n")...)
		return ok(map[string]any{"file": name, "original": "written by the model\n", "edited": "edited in the browser\n"})
	case "deny":
		name := file("denied")
		r.reason = "REASON-" + steps.RandHex(3) + " keep the staging copy"
		w.script(t, "browser-deny", write(name, "should not exist\n")...)
		r.mark = w.model.Mark()
		return ok(map[string]any{"file": name, "reason": r.reason})
	case "elsewhere":
		name := file("elsewhere")
		w.script(t, "browser-elsewhere", write(name, "approved by the member\n")...)
		return ok(map[string]any{"file": name, "by": w.member.name})
	case "question":
		return r.scriptQuestion()
	case "plan":
		return r.scriptPlan()
	}
	return failed(fmt.Errorf("no such phase %q", phase))
}

// session is this run's session, as its owner lists it.
func (r *browserRun) session() (Session, error) {
	var list struct {
		Sessions []Session `json:"sessions"`
	}
	resp, err := r.w.api(r.w.owner).Do(r.w.ctx, "GET", "/sessions", nil)
	if err == nil {
		err = resp.JSON(&list)
	}
	if err != nil {
		return Session{}, err
	}
	for _, s := range list.Sessions {
		if s.ChannelID == r.channel.Id {
			return s, nil
		}
	}
	return Session{}, fmt.Errorf("GET /sessions lists no session in %s", r.channel.Name)
}

// decideAsMember approves the pending approval through the REST API as the second user.
func (r *browserRun) decideAsMember() browserReply {
	s, err := r.session()
	if err != nil {
		return failed(err)
	}
	member := r.w.api(r.w.member)
	var list struct {
		Approvals []map[string]any `json:"approvals"`
	}
	resp, err := member.Do(r.w.ctx, "GET", "/sessions/"+s.ID+"/approvals", nil)
	if err == nil {
		err = resp.JSON(&list)
	}
	if err != nil {
		return failed(err)
	}
	for _, a := range list.Approvals {
		if a["state"] != "pending" {
			continue
		}
		id, _ := a["approval_id"].(string)
		resp, err := member.Do(r.w.ctx, "POST", "/sessions/"+s.ID+"/approvals/"+id, map[string]string{"decision": "approve"})
		if err != nil {
			return failed(err)
		}
		if resp.Status != http.StatusOK {
			return failed(fmt.Errorf("the member's approval answered %s", resp))
		}
		return ok(map[string]string{"approval_id": id})
	}
	return failed(fmt.Errorf("no pending approval to decide: %v", list.Approvals))
}

// check is what the disk and the model show after a phase.
func (r *browserRun) check(phase string) error {
	if phase == "question" || phase == "plan" {
		return r.checkAsk(phase)
	}
	name := r.files[phase]
	if phase == "files" {
		name = r.files["edit"] // the file the Files tab opened
	}
	path := filepath.Join(r.root, name)
	holds := func(want string) error {
		var got []byte
		if !steps.Poll(postTimeout, func() bool {
			got, _ = os.ReadFile(path)
			return string(got) == want
		}) {
			return fmt.Errorf("%s holds %q, want %q", filepath.Base(path), got, want)
		}
		return nil
	}
	switch phase {
	case "edit":
		return holds("edited in the browser\n")
	case "elsewhere":
		return holds("approved by the member\n")
	case "files":
		// A stale If-Match never overwrites.
		return holds("changed on disk\n")
	case "deny":
		if !steps.Poll(turnTimeout, func() bool { return r.w.modelSaw(r.mark, r.reason) }) {
			return fmt.Errorf("the model's requests after the denial never contain the reason %q", r.reason)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("the denied Write of %s happened anyway (%v)", filepath.Base(path), err)
		}
		return nil
	}
	return fmt.Errorf("no check for phase %q", phase)
}

// bench turns the page's first-seen times (epoch ms, per word) and the proxy's release times
// into the latency of CLI text → text in the DOM.
func (r *browserRun) bench(seen map[string]any) browserReply {
	released := r.proxy.Released()
	var lat []time.Duration
	for word, v := range seen {
		at, isNum := v.(float64)
		rel, found := ReleaseOf(released, word)
		if !isNum || !found {
			continue
		}
		lat = append(lat, time.UnixMicro(int64(at*1000)).Sub(rel))
	}
	if len(lat) == 0 {
		return failed(fmt.Errorf("no word seen in the page (%d) was matched to a released chunk (%d)", len(seen), len(released)))
	}
	p50, p99 := Pct(lat, 50), Pct(lat, 99)
	line := fmt.Sprintf("CLI text → text in the DOM: p50 %s, p99 %s, max %s over %d chunks (target p50 < 150 ms)", Ms(p50), Ms(p99), Ms(Pct(lat, 100)), len(lat))
	if p50 >= 150*time.Millisecond {
		r.t.Errorf("%s: p50 over the target", line)
	}
	return ok(map[string]any{"line": line, "p50_ms": float64(p50.Microseconds()) / 1000, "p99_ms": float64(p99.Microseconds()) / 1000, "chunks": len(lat)})
}

// stopSession ends this run's session so that it holds no CLI and counts for no later step.
func (r *browserRun) stopSession() {
	s, err := r.session()
	if err != nil {
		return
	}
	if resp, err := r.w.api(r.w.owner).Do(r.w.ctx, "DELETE", "/sessions/"+s.ID, nil); err != nil || resp.Status/100 != 2 {
		r.t.Errorf("stopping the browser session: %v %v", resp, err)
	}
}
