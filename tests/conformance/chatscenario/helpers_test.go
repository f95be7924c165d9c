package chatscenario

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/harness"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

const (
	teamID     = "t-scenario"
	teamName   = "team-one"
	channelID  = "c-main"
	otherChan  = "c-other"
	secretChan = "c-secret"
	owner      = "u-owner"
	member     = "u-member"
	outsider   = "u-outsider"

	approvalURL = "/plugins/claude-code/api/v1/actions/approval"
	dialogURL   = "/plugins/claude-code/api/v1/actions/approval/dialog"

	hookTimeout = 60 * time.Second  // one hook call (a /claude start may spawn the CLI)
	turnTimeout = 120 * time.Second // one model turn on the real CLI
)

var readers = []string{"u-reader-1", "u-reader-2", "u-reader-3", "u-reader-4", "u-reader-5", "u-reader-6", "u-reader-7", "u-reader-8"}

type scenario struct {
	host   *harness.Host
	api    *harness.FakeAPI
	hooks  plugin.Hooks
	logs   *mlog.Buffer
	logger *mlog.Logger
	model  *fakemodel.Model
	botID  string

	base    string // temp dir
	roots   string // AllowedProjectRoots
	project string // the session's project dir
	dataDir string
	cli     string

	rootPostID string // the session thread root (step 1)
	sessionID  string // from the first approval card's context (step 3)
	markers    map[string]string
	envMarker  string
}

// within runs fn with a deadline (a hook call must never hang the scenario).
func within[T any](d time.Duration, what string, fn func() T) (T, error) {
	return harness.Within(d, what, fn)
}

type cmdResult struct {
	resp  *model.CommandResponse
	reply string // resp.Text plus the ephemeral posts the user got during the call
}

// command runs ExecuteCommand as the server does for a user typing text in channelID.
func (s *scenario) command(user, text string) (cmdResult, error) {
	return s.commandIn(user, channelID, text)
}

func (s *scenario) commandIn(user, channel, text string) (cmdResult, error) {
	r, err := harness.RunCommand(s.hooks, s.api, hookTimeout, &model.CommandArgs{
		Command: text, UserId: user, ChannelId: channel, TeamId: teamID,
		SiteURL: "http://localhost:8065", TriggerId: model.NewId(),
	})
	return cmdResult{resp: r.Resp, reply: r.Reply}, err
}

// mustReply runs a command and checks the reply is ephemeral and contains every want.
func (s *scenario) mustReply(t *testing.T, user, text string, want ...string) cmdResult {
	t.Helper()
	r, err := s.command(user, text)
	if err != nil {
		t.Errorf("%v", err)
		return r
	}
	if r.resp != nil && r.resp.Text != "" && r.resp.ResponseType != model.CommandResponseTypeEphemeral {
		t.Errorf("%q: ResponseType %q, want ephemeral", text, r.resp.ResponseType)
	}
	for _, w := range want {
		if !strings.Contains(r.reply, w) {
			t.Errorf("%q as %s: reply %q lacks %q", text, user, r.reply, w)
		}
	}
	return r
}

// serve sends one HTTP request to the plugin's ServeHTTP (path without /plugins/claude-code).
func (s *scenario) serve(method, path, user string, body any) (*httptest.ResponseRecorder, error) {
	return harness.ServeHTTP(s.hooks, hookTimeout, method, path, user, body)
}

// ---- posts ----

func (s *scenario) threadPosts() []*model.Post {
	var out []*model.Post
	if s.rootPostID == "" {
		return nil
	}
	for _, p := range s.api.Posts(channelID) {
		if p.RootId == s.rootPostID {
			out = append(out, p)
		}
	}
	return out
}

func postIDs(ps []*model.Post) map[string]bool {
	m := map[string]bool{}
	for _, p := range ps {
		m[p.Id] = true
	}
	return m
}

func isCard(p *model.Post) bool { return len(steps.Actions(p.GetProps())) > 0 }

// newBotPosts: the bot's thread posts that are not in before.
func (s *scenario) newBotPosts(before map[string]bool, cards bool) []*model.Post {
	var out []*model.Post
	for _, p := range s.threadPosts() {
		if p.UserId == s.botID && !before[p.Id] && isCard(p) == cards {
			out = append(out, p)
		}
	}
	return out
}

// waitDone waits for a new (not in before) non-card bot post in the thread with a "✓ Done" line.
func (s *scenario) waitDone(t *testing.T, before map[string]bool, what string) *model.Post {
	t.Helper()
	var done *model.Post
	if !steps.Poll(turnTimeout, func() bool {
		for _, p := range s.newBotPosts(before, false) {
			if steps.HasDoneLine(p.Message) {
				done = p
				return true
			}
		}
		return false
	}) {
		t.Errorf("%s: no bot reply with a \"✓ Done\" line in the session thread within %v; new bot posts: %s",
			what, turnTimeout, describePosts(s.newBotPosts(before, false)))
	}
	return done
}

// waitCard waits for a new approval card in the thread.
func (s *scenario) waitCard(t *testing.T, before map[string]bool) *model.Post {
	t.Helper()
	var card *model.Post
	if !steps.Poll(turnTimeout, func() bool {
		if cs := s.newBotPosts(before, true); len(cs) > 0 {
			card = cs[0]
			return true
		}
		return false
	}) {
		t.Fatalf("no approval card (bot post in the thread with attachment actions) within %v; new bot posts: %s",
			turnTimeout, describePosts(s.newBotPosts(before, false)))
	}
	return card
}

// waitRequest waits for a model request after mark whose text contains every want.
func (s *scenario) waitRequest(t *testing.T, mark int, d time.Duration, want ...string) bool {
	t.Helper()
	ok := steps.Poll(d, func() bool {
		for _, r := range s.model.Since(mark) {
			all := true
			for _, w := range want {
				all = all && strings.Contains(r.Text, w)
			}
			if all {
				return true
			}
		}
		return false
	})
	if !ok {
		var tails []string
		for i, r := range s.model.Since(mark) {
			txt := r.Text
			if len(txt) > 400 {
				txt = "…" + txt[len(txt)-400:]
			}
			tails = append(tails, fmt.Sprintf("request %d (%s), its strings end with: %q", i+1, r.Kind, txt))
		}
		t.Errorf("no model request (of %d since the step began) contains all of %q within %v:\n%s",
			len(s.model.Since(mark)), want, d, strings.Join(tails, "\n"))
	}
	return ok
}

func describePosts(ps []*model.Post) string { return steps.DescribePosts(ps) }

// ---- approval clicks ----

type clickResult struct {
	code int
	raw  string
	body map[string]any
}

func (c clickResult) ephemeral() string { s, _ := c.body["ephemeral_text"].(string); return s }

func (s *scenario) click(user string, card *model.Post, context map[string]any, trigger string) (clickResult, error) {
	req := model.PostActionIntegrationRequest{
		UserId: user, UserName: strings.TrimPrefix(user, "u-"), ChannelId: card.ChannelId,
		ChannelName: "main", TeamId: teamID, TeamName: teamName, PostId: card.Id,
		TriggerId: trigger, Type: model.PostActionTypeButton, Context: context,
	}
	rec, err := s.serve("POST", "/api/v1/actions/approval", user, req)
	if err != nil {
		return clickResult{}, err
	}
	res := clickResult{code: rec.Code, raw: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &res.body)
	return res, nil
}

func actionByID(card *model.Post, id string) *model.PostAction {
	for _, a := range steps.Actions(card.GetProps()) {
		if a != nil && a.Id == id {
			return a
		}
	}
	return nil
}

func copyContext(a *model.PostAction) map[string]any {
	out := map[string]any{}
	if a != nil && a.Integration != nil {
		for k, v := range a.Integration.Context {
			out[k] = v
		}
	}
	return out
}

// flipHex changes one hex digit of s (keeps it well-formed, breaks the MAC).
func flipHex(s string) string {
	if s == "" {
		return "0"
	}
	b := []byte(s)
	i := len(b) / 2
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

// checkCard verifies the approval card's shape; returns the approve action.
func checkCard(t *testing.T, card *model.Post, tool, target string) {
	t.Helper()
	var ids []string
	for _, a := range steps.Actions(card.GetProps()) {
		ids = append(ids, a.Id)
		if a.Integration == nil || a.Integration.URL != approvalURL {
			t.Errorf("action %q: integration %+v, want URL %s", a.Id, a.Integration, approvalURL)
			continue
		}
		for _, k := range []string{"session_id", "request_id", "action", "expires_at", "sig"} {
			if v, ok := a.Integration.Context[k]; !ok || fmt.Sprint(v) == "" {
				t.Errorf("action %q: context lacks %q: %v", a.Id, k, a.Integration.Context)
			}
		}
	}
	for _, want := range []string{"approve", "approvesession", "deny", "denyreason"} {
		if !slices.Contains(ids, want) {
			t.Errorf("card actions %v lack %q", ids, want)
		}
	}
	for _, id := range ids {
		if !slices.Contains([]string{"approve", "approvesession", "deny", "denyreason", "editapprove"}, id) {
			t.Errorf("card has an unexpected action %q", id)
		}
	}
	if n := len(ids); n != 4 && n != 5 {
		t.Errorf("card has %d actions %v, want 4 or 5", n, ids)
	}
	text := steps.Shown(card.Message, card.GetProps())
	if !strings.Contains(text, tool) || !strings.Contains(text, target) {
		t.Errorf("card does not name the tool %q and its target %q: %q", tool, target, text)
	}
}

// ---- processes ----

// relatedProcesses: live processes (not this test, not the plugin, not the fake) whose cwd is
// inside the project, or whose command line mentions the project dir or the session id, or whose
// environment mentions the data directory (the CLI's HOME lives there).
func (s *scenario) relatedProcesses() []string { return s.relatedProcessesExcept(s.host.PluginPIDs()) }

func (s *scenario) relatedProcessesExcept(plugin []int) []string {
	skip := map[int]bool{os.Getpid(): true, s.model.Pid(): true}
	for _, p := range plugin {
		skip[p] = true
	}
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || skip[pid] {
			continue
		}
		if st, err := harness.ProcStatus(pid, "State"); err != nil || strings.HasPrefix(st, "Z") {
			continue
		}
		dir := fmt.Sprintf("/proc/%d/", pid)
		cwd, _ := os.Readlink(dir + "cwd")
		cmdline, _ := os.ReadFile(dir + "cmdline")
		environ, _ := os.ReadFile(dir + "environ")
		cl := strings.ReplaceAll(string(cmdline), "\x00", " ")
		hit := cwd == s.project || strings.HasPrefix(cwd, s.project+"/") ||
			strings.Contains(cl, s.project) ||
			(s.sessionID != "" && strings.Contains(cl, s.sessionID)) ||
			bytes.Contains(environ, []byte(s.dataDir))
		if hit {
			exe, _ := os.Readlink(dir + "exe")
			out = append(out, fmt.Sprintf("pid %d exe=%s cwd=%s cmd=%.200s", pid, exe, cwd, cl))
		}
	}
	return out
}

func pidOf(desc string) int {
	var pid int
	fmt.Sscanf(desc, "pid %d", &pid)
	return pid
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
