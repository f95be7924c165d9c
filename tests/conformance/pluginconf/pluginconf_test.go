// Package pluginconf loads the plugin tarball with Mattermost's real host code
// (plugin.Environment -> supervisor -> go-plugin -> yamux) against harness.FakeAPI and
// drives its hooks as the server does.
//
// CLAUDE_CODE_TARBALL=<dist tarball> selects the plugin under test; unset, the Go
// reference plugin (../refplugin) is built and packed the same way.
package pluginconf

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"claudecode/conformance/harness"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

var (
	tarball     string // plugin under test
	isReference bool
	passed      atomic.Int64
	failed      atomic.Int64
)

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "pluginconf-")
	if err != nil {
		panic(err)
	}
	tarball = os.Getenv("CLAUDE_CODE_TARBALL")
	if tarball == "" {
		isReference = true
		fmt.Println("CLAUDE_CODE_TARBALL unset: testing the Go reference plugin (tests/conformance/refplugin)")
		tarball, err = harness.BuildRefTarball(tmp)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
	} else if tarball, err = filepath.Abs(tarball); err != nil {
		panic(err)
	}
	fmt.Println("plugin under test:", tarball)
	code := m.Run()
	os.RemoveAll(tmp)
	fmt.Printf("pluginconf: %d passed, %d failed\n", passed.Load(), failed.Load())
	os.Exit(code)
}

// check runs one named check and counts it.
func check(t *testing.T, name string, fn func(t *testing.T)) bool {
	return t.Run(name, func(t *testing.T) {
		t.Cleanup(func() {
			if t.Failed() {
				failed.Add(1)
			} else {
				passed.Add(1)
			}
		})
		fn(t)
	})
}

type env struct {
	host   *harness.Host
	logs   *mlog.Buffer
	logger *mlog.Logger
	hooks  plugin.Hooks
}

func activate(t *testing.T) *env {
	t.Helper()
	logs := &mlog.Buffer{}
	logger, err := harness.NewLogger(logs)
	if err != nil {
		t.Fatal(err)
	}
	host, err := harness.NewHost(tarball, t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	// These checks load the plugin on purpose (200 concurrent commands): no per-user limit.
	host.API.SetConfig(map[string]any{"CommandsPerMinute": 0, "DataDirectory": t.TempDir()})
	host.API.AddUser(&model.User{Id: "u1", Username: "alice", Roles: "system_user"})
	host.API.AddChannel(&model.Channel{Id: "c1", TeamId: "t1", Type: model.ChannelTypeOpen, Name: "town-square"})
	host.API.AddMember("c1", "u1", model.PermissionCreatePost.Id, model.PermissionReadChannel.Id)
	t.Cleanup(func() {
		host.Env.Shutdown()
		if t.Failed() {
			_ = logger.Flush()
			t.Logf("host log:\n%s", tail(logs.String(), 60))
			t.Logf("unmodelled API calls: %v", host.API.Missing())
		}
	})
	return &env{host: host, logs: logs, logger: logger}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (e *env) serve(method, target string, body []byte, header map[string]string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.hooks.ServeHTTP(&plugin.Context{RequestId: "r"}, rec, req)
	return rec
}

var user = map[string]string{"Mattermost-User-Id": "u1"}

func (e *env) command(cmd string) (*model.CommandResponse, *model.AppError) {
	return e.hooks.ExecuteCommand(&plugin.Context{RequestId: "r"}, &model.CommandArgs{
		Command: cmd, UserId: "u1", ChannelId: "c1", TeamId: "t1", SiteURL: "http://localhost:8065",
	})
}

func (e *env) pid(t *testing.T) int {
	t.Helper()
	pids := e.host.PluginPIDs()
	if len(pids) != 1 {
		t.Fatalf("want exactly one plugin process running %s, found %v", e.host.Executable, pids)
	}
	return pids[0]
}

func checkActivated(t *testing.T, e *env, wantEnsure int) {
	t.Helper()
	api := e.host.API
	if n := api.Calls("EnsureBotUser"); n < wantEnsure {
		t.Errorf("EnsureBotUser called %d times, want >= %d", n, wantEnsure)
	}
	bots := api.Bots()
	if len(bots) != 1 || bots[0].Username != "claude" {
		t.Errorf("bots: %+v, want one with Username claude", bots)
	}
	var cmd *model.Command
	for _, c := range api.Commands() {
		if c.Trigger == "claude" {
			cmd = c
		}
	}
	if cmd == nil {
		t.Fatalf("no RegisterCommand with Trigger claude: %+v", api.Commands())
	}
	if !cmd.AutoComplete {
		t.Error("claude command: AutoComplete false")
	}
	if cmd.AutocompleteData == nil {
		t.Fatal("claude command: no AutocompleteData")
	}
	var subs []string
	for _, s := range cmd.AutocompleteData.SubCommands {
		subs = append(subs, s.Trigger)
	}
	for _, want := range []string{"start", "help"} {
		if !slices.Contains(subs, want) {
			t.Errorf("AutocompleteData.SubCommands %v lack %q", subs, want)
		}
	}
}

func hasReadyLog(e *env) bool {
	for _, l := range e.host.API.Logs() {
		if l.Level == "info" && strings.Contains(l.Message, "ready") {
			return true
		}
	}
	// The stderr path: hclog JSON / [INFO] lines re-logged by the host at info.
	_ = e.logger.Flush()
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["level"] == "info" && strings.Contains(fmt.Sprint(rec["msg"]), "ready") {
			return true
		}
	}
	return false
}

func TestPlugin(t *testing.T) {
	e := activate(t)

	if !check(t, "1_activation", func(t *testing.T) {
		m, activated, err := e.host.Env.Activate(harness.PluginID)
		if err != nil || !activated || m == nil || m.Id != harness.PluginID {
			t.Fatalf("Activate: manifest=%v activated=%v err=%v", m, activated, err)
		}
		if !e.host.Env.IsActive(harness.PluginID) {
			t.Fatal("not active after Activate")
		}
		hooks, err := e.host.Env.HooksForPlugin(harness.PluginID)
		if err != nil {
			t.Fatal(err)
		}
		e.hooks = hooks
		checkActivated(t, e, 1)
		// A stderr line reaches the host's logger asynchronously, after Activate may return.
		deadline := time.Now().Add(3 * time.Second)
		for !hasReadyLog(e) {
			if time.Now().After(deadline) {
				t.Error("no info log line containing \"ready\" within 3 s (API LogInfo or stderr)")
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}) {
		t.Error("activation failed; the checks that need an active plugin fail too")
	}
	// Every later check in this test needs the activated plugin.
	check := func(t *testing.T, name string, fn func(t *testing.T)) bool {
		return check(t, name, func(t *testing.T) {
			if e.hooks == nil {
				t.Fatal("plugin not active")
			}
			fn(t)
		})
	}

	// invalidUsageHint is how a wrongly used subcommand's reply starts to say what to type.
	const invalidUsageHint = "Type `/claude context thread`"

	check(t, "2_commands", func(t *testing.T) {
		r, appErr := e.command("/claude help")
		if appErr != nil || r == nil {
			t.Fatalf("/claude help: %v %v", r, appErr)
		}
		if r.ResponseType != model.CommandResponseTypeEphemeral || !strings.Contains(r.Text, "/claude start") {
			t.Errorf("/claude help: %q %q", r.ResponseType, r.Text)
		}
		// Text that is not a subcommand is a prompt for Claude, so the invalid case is a
		// subcommand used wrongly: the reply says what to type instead.
		r, appErr = e.command("/claude context bogus")
		if appErr != nil || r == nil {
			t.Fatalf("/claude context bogus: %v %v", r, appErr)
		}
		if r.ResponseType != model.CommandResponseTypeEphemeral || !strings.Contains(r.Text, invalidUsageHint) {
			t.Errorf("/claude context bogus: %q %q", r.ResponseType, r.Text)
		}
	})

	check(t, "3_http_request_echo", func(t *testing.T) {
		rec := e.serve("GET", "/api/v1/diag/request?a=1&b=two", nil, map[string]string{"X-Test": "v", "Mattermost-User-Id": "u1"})
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var got struct {
			Method  string              `json:"method"`
			Path    string              `json:"path"`
			Query   map[string][]string `json:"query"`
			Headers map[string][]string `json:"headers"`
			UserID  string              `json:"user_id"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("not JSON: %v: %s", err, rec.Body)
		}
		if got.Method != "GET" || got.Path != "/api/v1/diag/request" || got.UserID != "u1" {
			t.Errorf("method/path/user_id: %+v", got)
		}
		if !slices.Equal(got.Query["a"], []string{"1"}) || !slices.Equal(got.Query["b"], []string{"two"}) {
			t.Errorf("query: %v", got.Query)
		}
		hv := func(name string) []string {
			for k, v := range got.Headers {
				if strings.EqualFold(k, name) {
					return v
				}
			}
			return nil
		}
		if !slices.Equal(hv("X-Test"), []string{"v"}) || !slices.Equal(hv("Mattermost-User-Id"), []string{"u1"}) {
			t.Errorf("headers: %v", got.Headers)
		}
	})

	check(t, "3_http_echo_bodies_and_rss", func(t *testing.T) {
		pid := e.pid(t)
		for _, size := range []int{1 << 10, 1 << 20, 20 << 20} {
			body := make([]byte, size)
			rand.Read(body)
			before, _ := harness.ProcKiB(pid, "VmHWM")
			rec := e.serve("POST", "/api/v1/diag/echo", body, user)
			after, _ := harness.ProcKiB(pid, "VmHWM")
			if rec.Code != 200 {
				t.Fatalf("%d bytes: status %d", size, rec.Code)
			}
			if !bytes.Equal(rec.Body.Bytes(), body) {
				t.Errorf("%d bytes: echo differs (got %d bytes)", size, rec.Body.Len())
			}
			if rec.Header().Get("X-Diag") != "echo" {
				t.Errorf("%d bytes: X-Diag %q", size, rec.Header().Get("X-Diag"))
			}
			t.Logf("%d bytes: plugin VmHWM %d -> %d KiB", size, before, after)
			if size == 20<<20 && after-before >= 8<<10 {
				t.Errorf("peak RSS grew by %d KiB echoing 20 MiB (limit 8 MiB): the body is buffered", after-before)
			}
		}
		rec := e.serve("POST", "/api/v1/diag/echo?status=201", []byte("x"), user)
		if rec.Code != 201 || rec.Body.String() != "x" {
			t.Errorf("?status=201: %d %q", rec.Code, rec.Body)
		}
	})

	check(t, "3_http_download_pattern", func(t *testing.T) {
		rec := e.serve("GET", "/api/v1/diag/download?bytes=1048576", nil, user)
		if rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
		b := rec.Body.Bytes()
		if len(b) != 1<<20 {
			t.Fatalf("got %d bytes", len(b))
		}
		for i, c := range b {
			if c != byte(i%251) {
				t.Fatalf("byte %d = %d, want %d", i, c, i%251)
			}
		}
	})

	check(t, "3_http_status_codes", func(t *testing.T) {
		if rec := e.serve("GET", "/api/v1/nope", nil, user); rec.Code != 404 {
			t.Errorf("GET /api/v1/nope: %d", rec.Code)
		}
		for _, p := range []string{"/api/v1/diag/request", "/api/v1/nope", "/api/v1/diag/kv/k1", "/"} {
			if rec := e.serve("GET", p, nil, nil); rec.Code != 401 {
				t.Errorf("GET %s without Mattermost-User-Id: %d, want 401", p, rec.Code)
			}
		}
		if rec := e.serve("POST", "/api/v1/diag/echo", []byte("x"), nil); rec.Code != 401 {
			t.Errorf("POST echo without user: %d", rec.Code)
		}
		if rec := e.serve("GET", "/api/v1/health", nil, nil); rec.Code != 200 {
			t.Errorf("GET /api/v1/health without user: %d", rec.Code)
		}
	})

	check(t, "3_metrics_listener", func(t *testing.T) {
		// One request for the counts, then the hook as the server's metrics listener calls it:
		// no user, a bare Context, the request to /plugins/<id>/metrics.
		if rec := e.serve("GET", "/api/v1/health", nil, nil); rec.Code != 200 {
			t.Fatalf("health: %d", rec.Code)
		}
		req := httptest.NewRequest("GET", "/plugins/"+harness.PluginID+"/metrics", nil)
		rec := httptest.NewRecorder()
		e.hooks.ServeMetrics(&plugin.Context{}, rec, req)
		if isReference {
			// The reference plugin has no ServeMetrics: the host answers 404 itself.
			if rec.Code != 404 {
				t.Errorf("reference plugin ServeMetrics: %d, want 404", rec.Code)
			}
			return
		}
		if rec.Code != 200 {
			t.Fatalf("ServeMetrics: %d %s", rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			t.Errorf("Content-Type %q", ct)
		}
		body := rec.Body.String()
		for _, series := range []string{
			"sessions_active gauge", "sessions_started_total counter", "turns_total counter",
			"messages_total counter", "cli_spawn_seconds histogram", "first_text_seconds histogram",
			"approval_wait_seconds histogram", "approvals_total counter", "errors_total counter",
			"hook_duration_seconds histogram", "outbox_backlog gauge", "http_requests_total counter",
		} {
			if !strings.Contains(body, "# TYPE claude_code_"+series+"\n") {
				t.Errorf("no series %q in\n%s", series, body)
			}
		}
		for _, sample := range []string{
			`claude_code_http_requests_total{route="GET /api/v1/health",status="200"} `,
			`claude_code_hook_duration_seconds_count{hook="ServeHTTP"} `,
		} {
			if !strings.Contains(body, sample) {
				t.Errorf("no sample %q in\n%s", sample, body)
			}
		}
	})

	check(t, "4_kv_bytes_roundtrip", func(t *testing.T) {
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		if rec := e.serve("PUT", "/api/v1/diag/kv/k1", all, user); rec.Code/100 != 2 {
			t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
		}
		rec := e.serve("GET", "/api/v1/diag/kv/k1", nil, user)
		if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), all) {
			t.Errorf("GET: %d %x", rec.Code, rec.Body.Bytes())
		}
		if v := e.host.API.KVSnapshot()["k1"]; !bytes.Equal(v, all) {
			t.Errorf("fake store holds %x", v)
		}
	})

	check(t, "4_kv_list_paging", func(t *testing.T) {
		var want []string
		for i := 0; i < 25; i++ {
			k := fmt.Sprintf("page-%02d", i)
			want = append(want, k)
			if rec := e.serve("PUT", "/api/v1/diag/kv/"+k, []byte{byte(i)}, user); rec.Code/100 != 2 {
				t.Fatalf("PUT %s: %d", k, rec.Code)
			}
		}
		var got []string
		for page, min := range []int{10, 10, 5} {
			rec := e.serve("GET", fmt.Sprintf("/api/v1/diag/kv?page=%d&per_page=10", page), nil, user)
			var body struct {
				Keys []string `json:"keys"`
			}
			if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
				t.Fatalf("page %d: %d %s", page, rec.Code, rec.Body)
			}
			if len(body.Keys) < min || (page < 2 && len(body.Keys) != 10) {
				t.Errorf("page %d: %d keys %v", page, len(body.Keys), body.Keys)
			}
			got = append(got, body.Keys...)
		}
		if !slices.IsSorted(got) {
			t.Errorf("keys across pages not in order: %v", got)
		}
		for _, k := range want {
			if !slices.Contains(got, k) {
				t.Errorf("key %s missing from pages %v", k, got)
			}
		}
	})

	check(t, "4_kv_cas_race", func(t *testing.T) {
		if rec := e.serve("PUT", "/api/v1/diag/kv/counter", []byte("base"), user); rec.Code/100 != 2 {
			t.Fatalf("PUT counter: %d", rec.Code)
		}
		old := base64.StdEncoding.EncodeToString([]byte("base"))
		var wins atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan string, 50)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				nw := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("g%02d", i)))
				body := fmt.Sprintf(`{"old":%q,"new":%q}`, old, nw)
				rec := e.serve("POST", "/api/v1/diag/kv/counter/cas", []byte(body), user)
				var res struct {
					OK *bool `json:"ok"`
				}
				if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &res) != nil || res.OK == nil {
					errs <- fmt.Sprintf("goroutine %d: %d %s", i, rec.Code, rec.Body)
					return
				}
				if *res.OK {
					wins.Add(1)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		if wins.Load() != 1 {
			t.Errorf("%d CAS winners, want exactly 1", wins.Load())
		}
		if v := string(e.host.API.KVSnapshot()["counter"]); !regexp.MustCompile(`^g\d\d$`).MatchString(v) {
			t.Errorf("counter holds %q", v)
		}
	})

	check(t, "5_concurrent_commands", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, 200)
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				cmd, want := "/claude help", "/claude start"
				if i%2 == 1 {
					cmd, want = fmt.Sprintf("/claude context bogus%d", i), invalidUsageHint
				}
				r, appErr := e.command(cmd)
				if appErr != nil || r == nil || r.ResponseType != "ephemeral" || !strings.Contains(r.Text, want) {
					errs <- fmt.Sprintf("%s: %v %v", cmd, r, appErr)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	check(t, "6_health_checks", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			if err := e.host.Env.PerformHealthCheck(harness.PluginID); err != nil {
				t.Fatalf("health check %d: %v", i+1, err)
			}
		}
	})

	check(t, "6_deactivate_reactivate", func(t *testing.T) {
		oldPID := e.pid(t)
		ensures := e.host.API.Calls("EnsureBotUser")
		if !e.host.Env.Deactivate(harness.PluginID) {
			t.Fatal("Deactivate returned false")
		}
		if e.host.Env.IsActive(harness.PluginID) {
			t.Fatal("still active")
		}
		waitGone(t, []int{oldPID}, 5*time.Second)
		_, activated, err := e.host.Env.Activate(harness.PluginID)
		if err != nil || !activated {
			t.Fatalf("re-Activate: %v %v", activated, err)
		}
		checkActivated(t, e, ensures+1)
		hooks, err := e.host.Env.HooksForPlugin(harness.PluginID)
		if err != nil {
			t.Fatal(err)
		}
		e.hooks = hooks
		if r, _ := e.command("/claude help"); r == nil || !strings.Contains(r.Text, "/claude start") {
			t.Errorf("after reactivation: %v", r)
		}
		if newPID := e.pid(t); newPID == oldPID {
			t.Errorf("same pid %d after reactivation", newPID)
		}
	})

	check(t, "6_shutdown_leaves_no_process", func(t *testing.T) {
		pids := e.host.PluginPIDs()
		if len(pids) == 0 {
			t.Fatal("no plugin process before Shutdown")
		}
		e.host.Env.Shutdown()
		waitGone(t, pids, 5*time.Second)
		if left := e.host.AllPIDs(); len(left) != 0 {
			t.Errorf("plugin processes (or CLI supervisors) left after Shutdown: %v", left)
		}
	})

}

// TestProcess starts the executable by hand (no Environment), so it runs even when
// activation fails.
func TestProcess(t *testing.T) {
	bundle, err := harness.UnpackTarball(tarball, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	info := model.BundleInfoForPath(bundle)
	if info.ManifestError != nil {
		t.Fatal(info.ManifestError)
	}
	exe := filepath.Join(bundle, info.Manifest.GetExecutableForRuntime(runtime.GOOS, runtime.GOARCH))

	check(t, "6_exits_when_host_connection_closes", func(t *testing.T) {
		s, line, err := harness.StartByHand(exe, harness.CookieValue, 3*time.Second)
		if err != nil {
			if s != nil {
				s.Kill()
			}
			t.Fatal(err)
		}
		defer s.Kill()
		if !regexp.MustCompile(`^1\|1\|(unix|tcp)\|[^|]+\|netrpc\|?`).MatchString(line) {
			t.Fatalf("handshake line %q", line)
		}
		hc, err := s.Connect()
		if err != nil {
			t.Fatal(err)
		}
		var empty struct{}
		if err := hc.Control.Call("Control.Ping", true, &empty); err != nil {
			t.Fatalf("Control.Ping: %v", err)
		}
		// A real host keeps its connection for the plugin's lifetime. Hold it a moment so
		// the Go reference's /proc fd poller (100 ms) sees it; the Rust plugin needs none.
		time.Sleep(300 * time.Millisecond)
		hc.Conn.Close()
		select {
		case <-s.Exited:
		case <-time.After(2 * time.Second):
			t.Fatal("plugin still running 2 s after the host connection closed")
		}
	})

	check(t, "7_wrong_or_missing_cookie", func(t *testing.T) {
		for _, cookie := range []string{"", "wrong"} {
			s, _, err := harness.StartByHand(exe, cookie, 3*time.Second)
			if err != nil {
				t.Fatalf("cookie %q: %v", cookie, err)
			}
			select {
			case err := <-s.Exited:
				code := -1
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err == nil {
					code = 0
				}
				if code != 1 {
					t.Errorf("cookie %q: exit code %d, want 1", cookie, code)
				}
				if !strings.Contains(s.Stderr(), "Mattermost plugin") {
					t.Errorf("cookie %q: stderr %q lacks \"Mattermost plugin\"", cookie, s.Stderr())
				}
			case <-time.After(3 * time.Second):
				s.Kill()
				t.Errorf("cookie %q: still running after 3 s", cookie)
			}
		}
	})
}

func waitGone(t *testing.T, pids []int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, pid := range pids {
			if st, err := harness.ProcStatus(pid, "State"); err == nil && !strings.HasPrefix(st, "Z") {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v still alive after %v", alive, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTarball(t *testing.T) {
	check(t, "8_tarball_layout", func(t *testing.T) {
		st, err := os.Stat(tarball)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", tarball, st.Size())
		if st.Size() >= 50<<20 {
			t.Errorf("tarball is %d bytes; Mattermost's upload limit is 50 MiB", st.Size())
		}
		entries, err := harness.ListTarball(tarball)
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]harness.TarEntry{}
		for _, en := range entries {
			name := strings.TrimSuffix(strings.TrimPrefix(en.Name, "./"), "/")
			if name != harness.PluginID && !strings.HasPrefix(name, harness.PluginID+"/") {
				t.Errorf("entry %q outside the top directory %s/", en.Name, harness.PluginID)
			}
			byName[name] = en
		}
		for _, exe := range []string{"server/dist/plugin-linux-amd64", "server/dist/plugin-linux-arm64"} {
			en, ok := byName[harness.PluginID+"/"+exe]
			if !ok {
				t.Errorf("missing %s", exe)
				continue
			}
			if en.Mode&0o777 != 0o755 {
				t.Errorf("%s mode %o, want 755", exe, en.Mode&0o777)
			}
		}
		if _, ok := byName[harness.PluginID+"/plugin.json"]; !ok {
			t.Fatal("missing plugin.json")
		}
		if en, ok := byName[harness.PluginID+"/webapp/dist/main.js"]; ok {
			t.Logf("webapp bundle present: %d bytes", en.Size)
		}
		dir := t.TempDir()
		bundle, err := harness.UnpackTarball(tarball, dir)
		if err != nil {
			t.Fatal(err)
		}
		info := model.BundleInfoForPath(bundle)
		if info.ManifestError != nil || info.Manifest.Id != harness.PluginID {
			t.Fatalf("manifest: %v %v", info.Manifest, info.ManifestError)
		}
		for arch, want := range map[string]string{"amd64": "server/dist/plugin-linux-amd64", "arm64": "server/dist/plugin-linux-arm64"} {
			if got := info.Manifest.GetExecutableForRuntime("linux", arch); got != want {
				t.Errorf("manifest executable for linux-%s: %q, want %q", arch, got, want)
			}
		}
		if !isReference {
			if base := filepath.Base(tarball); base != fmt.Sprintf("%s-%s.tar.gz", harness.PluginID, info.Manifest.Version) {
				t.Errorf("tarball name %s does not carry plugin.json version %s", base, info.Manifest.Version)
			}
		}
	})

	check(t, "8_executables_static", func(t *testing.T) {
		if _, err := exec.LookPath("file"); err != nil {
			t.Fatal("the file(1) command is needed: apt-get install file")
		}
		dir := t.TempDir()
		bundle, err := harness.UnpackTarball(tarball, dir)
		if err != nil {
			t.Fatal(err)
		}
		for arch, machine := range map[string]string{"amd64": "x86-64", "arm64": "ARM aarch64"} {
			out, err := exec.Command("file", "-b", filepath.Join(bundle, "server/dist/plugin-linux-"+arch)).Output()
			if err != nil {
				t.Fatal(err)
			}
			desc := strings.TrimSpace(string(out))
			t.Logf("linux-%s: %s", arch, desc)
			if !strings.HasPrefix(desc, "ELF 64-bit LSB") || !strings.Contains(desc, machine) {
				t.Errorf("linux-%s is not a 64-bit %s ELF: %s", arch, machine, desc)
			}
			if !strings.Contains(desc, "statically linked") && !strings.Contains(desc, "static-pie linked") {
				t.Errorf("linux-%s is not statically linked: %s", arch, desc)
			}
		}
	})
}
