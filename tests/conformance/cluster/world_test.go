// Package cluster runs "Claude in the channel" on a simulated Mattermost cluster (issue 13):
// copies of the plugin tarball, one per node, each under Mattermost's real host code
// (plugin.Environment), sharing one harness.FakeAPI (KV, posts, channels), one data directory
// and one fake model, with harness.Bus carrying their plugin cluster events; the REAL Claude
// Code CLI answers through the scripted fake Messages API.
//
//	CLAUDE_CODE_TARBALL=<dist tarball>   required (the tests skip without it)
//	CLAUDE_CLI=<claude executable>       default tools/claude/node_modules/.bin/claude
//	FAKE_ANTHROPIC=<fake-anthropic>      default: cargo build -p fake-anthropic
//	CLUSTER_IDLE_SECONDS                 TestPlainServerIdleKV's idle windows (default 60)
//	CLUSTER_BENCH_SECONDS                TestClusterLoadBench's prompting time (default 120)
//	CLUSTER_BENCH_SESSIONS               TestClusterLoadBench's sessions (default 20)
//	CLUSTER_IDLE_LEASE_SECONDS           TestPlainServerIdleKV's lease (default 6; the plugin's own is 30)
//
// The plugin processes get MM_CLAUDE_CODE_LEASE_SECONDS=6 (the contract's test setting:
// RENEW 2 s, MARGIN 1 s, SKEW 2 s), so lease expiries take seconds.
package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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
	teamID = "t-cluster"
	owner  = "u-owner"

	leaseSeconds = 6
	lease        = leaseSeconds * time.Second
	skew         = 2 * time.Second // the contract's SKEW

	hookTimeout = 60 * time.Second // one hook call (a forwarded one included)
	turnTimeout = 60 * time.Second // one model turn on the real CLI (the fake model answers at once)
	// refusedWait replaces turnTimeout once the plugin said no to the request (it will not be
	// served later: waiting the full time would only slow a failing run down).
	refusedWait = 5 * time.Second
)

// world is one simulated cluster (or plain server) with the fake model and a team.
type world struct {
	c      *harness.Cluster
	api    *harness.FakeAPI
	model  *fakemodel.Model
	logs   *mlog.Buffer
	logger *mlog.Logger
	botID  string

	base, roots, dataDir string
	config               map[string]any // the plugin's settings, as SetConfig last got them
}

// session is one Claude Code session of a test, in its own channel and project directory.
type session struct {
	name    string
	channel string
	project string
	root    string // the thread root post ("Claude Code session started")
	id      string
}

func tarball(t *testing.T) string {
	p := os.Getenv("CLAUDE_CODE_TARBALL")
	if p == "" {
		t.Skip("CLAUDE_CODE_TARBALL unset: the cluster tests need the plugin tarball (make e2e-cluster sets it)")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// newWorld builds n nodes (plain: one server that is not clustered), configured alike, not
// yet activated.
func newWorld(t *testing.T, n int, plain bool) *world {
	tgz := tarball(t)
	cli := harness.ClaudeCLI(t)
	fakeBin, err := fakemodel.Binary()
	if err != nil {
		t.Fatal(err)
	}
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{base: base, roots: filepath.Join(base, "roots"), dataDir: filepath.Join(base, "data")}
	if err := os.MkdirAll(w.roots, 0o755); err != nil {
		t.Fatal(err)
	}
	// Inherited by every plugin process (and only read by them). A test that set it already
	// (the idle measure at the plugin's own lease) keeps its value.
	if os.Getenv("MM_CLAUDE_CODE_LEASE_SECONDS") == "" {
		t.Setenv("MM_CLAUDE_CODE_LEASE_SECONDS", fmt.Sprint(leaseSeconds))
	}

	w.model = fakemodel.New(fakeBin, filepath.Join(base, "fake"))
	if err := os.MkdirAll(w.model.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.model.Stop)
	if err := w.model.Start("boot", nil); err != nil {
		t.Fatal(err)
	}
	w.logs = &mlog.Buffer{}
	if w.logger, err = harness.NewLogger(w.logs); err != nil {
		t.Fatal(err)
	}
	// Registered before the cluster's own cleanup, so it runs after it: the logs are complete.
	t.Cleanup(func() { w.dumpOnFailure(t) })
	if plain {
		w.c = harness.NewPlainServer(t, tgz, w.logger)
	} else {
		w.c = harness.NewCluster(t, n, tgz, w.logger)
	}
	w.api = w.c.API
	w.config = map[string]any{
		"AllowedProjectRoots":   w.roots,
		"ClaudeCliPath":         cli,
		"AnthropicApiKey":       "sk-test",
		"AnthropicBaseUrl":      w.model.URL,
		"DataDirectory":         w.dataDir, // one directory for every node: a cluster's shared file storage
		"CommandsPerMinute":     600,
		"MaxConcurrentSessions": 30,
	}
	w.api.SetConfig(w.config)
	w.api.AddTeam(&model.Team{Id: teamID, Name: "team-cluster", DisplayName: "Cluster", Type: model.TeamOpen})
	w.api.AddUser(&model.User{Id: owner, Username: "owner", Roles: "system_user"})
	return w
}

func (w *world) activate(t *testing.T) {
	t.Helper()
	if err := w.c.ActivateAll(); err != nil {
		t.Fatal(err)
	}
	for _, b := range w.api.Bots() {
		if b.Username == "claude" {
			w.botID = b.UserId
		}
	}
	if w.botID == "" {
		t.Fatalf("no bot with username claude: %+v", w.api.Bots())
	}
}

func (w *world) dumpOnFailure(t *testing.T) {
	if !t.Failed() {
		return
	}
	_ = w.logger.Flush()
	t.Logf("host log tail (every node):\n%s", tail(w.logs.String(), 60))
	logs := w.api.Logs()
	if len(logs) > 40 {
		logs = logs[len(logs)-40:]
	}
	var lines []string
	for _, l := range logs {
		lines = append(lines, fmt.Sprintf("%s %s %v", l.Level, l.Message, l.KV))
	}
	t.Logf("plugin API log tail:\n%s", strings.Join(lines, "\n"))
	events := w.c.Bus.Events()
	t.Logf("cluster bus: %d events", len(events))
	for i, e := range events {
		if i >= 20 {
			t.Logf("… %d more", len(events)-i)
			break
		}
		t.Logf("  #%d %s→%s %s %s delivered=%v dropped=%q", e.Seq, e.From, e.To, e.SendType, e.Event.Id, !e.DeliveredAt.IsZero(), e.Dropped)
	}
	var leases []string
	for k, v := range w.api.KVSnapshot() {
		if strings.HasPrefix(k, "lease_") {
			leases = append(leases, k+"="+string(v))
		}
	}
	t.Logf("lease records in KV: %v", leases)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (w *world) hooks(t *testing.T, node string) plugin.Hooks {
	t.Helper()
	h, err := w.c.Node(node).Hooks()
	if err != nil {
		t.Fatalf("%s: hooks: %v", node, err)
	}
	return h
}

// newSessionChannel makes a channel (owner a member) and a project directory for a session.
func (w *world) newSessionChannel(t *testing.T, name string) *session {
	t.Helper()
	s := &session{name: name, channel: "c-" + name, project: filepath.Join(w.roots, name)}
	if err := os.MkdirAll(s.project, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.project, "README.md"), []byte("# "+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.api.AddChannel(&model.Channel{Id: s.channel, TeamId: teamID, Type: model.ChannelTypeOpen, Name: name, DisplayName: name})
	w.api.AddMember(s.channel, owner)
	return s
}

// start runs `/claude start <project>` through node and finds the session's thread root and
// id (GET /api/v1/sessions through the same node).
func (w *world) start(t *testing.T, node, name string) *session {
	t.Helper()
	s := w.newSessionChannel(t, name)
	r, err := w.command(t, node, s, "/claude start "+s.project)
	if err != nil {
		t.Fatalf("/claude start through %s: %v", node, err)
	}
	if !steps.Poll(hookTimeout, func() bool {
		for _, p := range w.api.Posts(s.channel) {
			if p.UserId == w.botID && p.RootId == "" && strings.Contains(p.Message, "Claude Code session started") {
				s.root = p.Id
				return true
			}
		}
		return false
	}) {
		t.Fatalf("/claude start through %s: no \"Claude Code session started\" post within %v (reply %q); posts: %s",
			node, hookTimeout, r.Reply, steps.DescribePosts(w.api.Posts(s.channel)))
	}
	code, body := w.rest(t, node, "GET", "/api/v1/sessions")
	var list struct {
		Sessions []struct {
			ID        string `json:"id"`
			ChannelID string `json:"channel_id"`
		} `json:"sessions"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("GET /api/v1/sessions through %s: %d %s", node, code, body)
	}
	for _, x := range list.Sessions {
		if x.ChannelID == s.channel {
			s.id = x.ID
		}
	}
	if s.id == "" {
		t.Fatalf("GET /api/v1/sessions through %s lists no session in %s: %s", node, s.channel, body)
	}
	return s
}

func (w *world) command(t *testing.T, node string, s *session, text string) (harness.CommandResult, error) {
	return harness.RunCommand(w.hooks(t, node), w.api, hookTimeout, &model.CommandArgs{
		Command: text, UserId: owner, ChannelId: s.channel, TeamId: teamID,
		SiteURL: "http://localhost:8065", TriggerId: model.NewId(),
	})
}

// threadReply posts a reply by the owner in the session's thread and delivers it to node's
// MessageHasBeenPosted (the node the post was made on).
func (w *world) threadReply(t *testing.T, node string, s *session, text string) {
	t.Helper()
	if _, err := harness.Posted(w.hooks(t, node), w.api, hookTimeout, &model.Post{ChannelId: s.channel, UserId: owner, RootId: s.root, Message: text}); err != nil {
		t.Fatalf("thread reply through %s: %v", node, err)
	}
}

// rest calls the plugin's REST API through node as the owner.
func (w *world) rest(t *testing.T, node, method, path string) (int, []byte) {
	t.Helper()
	rec, err := harness.ServeHTTP(w.hooks(t, node), hookTimeout, method, path, owner, nil)
	if err != nil {
		t.Fatalf("%s %s through %s: %v", method, path, node, err)
	}
	return rec.Code, rec.Body.Bytes()
}

// click sends a card button's callback through node's ServeHTTP, as the server relays it.
func (w *world) click(t *testing.T, node string, card *model.Post, action *model.PostAction) (int, string) {
	t.Helper()
	req := model.PostActionIntegrationRequest{
		UserId: owner, UserName: "owner", ChannelId: card.ChannelId, TeamId: teamID, PostId: card.Id,
		TriggerId: model.NewId(), Type: model.PostActionTypeButton, Context: action.Integration.Context,
	}
	rec, err := harness.ServeHTTP(w.hooks(t, node), hookTimeout, "POST", "/api/v1/actions/approval", owner, req)
	if err != nil {
		t.Fatalf("approval click through %s: %v", node, err)
	}
	return rec.Code, rec.Body.String()
}

// botThreadPosts are the bot's posts in the session's thread that are not in before, cards or not.
func (w *world) botThreadPosts(s *session, before map[string]bool, cards bool) []*model.Post {
	var out []*model.Post
	for _, p := range w.api.Posts(s.channel) {
		if p.RootId == s.root && p.UserId == w.botID && !before[p.Id] && (len(steps.Actions(p.GetProps())) > 0) == cards {
			out = append(out, p)
		}
	}
	return out
}

func (w *world) postIDs(s *session) map[string]bool {
	m := map[string]bool{}
	for _, p := range w.api.Posts(s.channel) {
		m[p.Id] = true
	}
	return m
}

// doneReplies are the bot's closed turn posts ("✓ Done") in the thread that are not in before.
func (w *world) doneReplies(s *session, before map[string]bool) []*model.Post {
	var out []*model.Post
	for _, p := range w.botThreadPosts(s, before, false) {
		if steps.HasDoneLine(p.Message) {
			out = append(out, p)
		}
	}
	return out
}

// waitDone waits for a closed turn post in the thread that is not in before.
func (w *world) waitDone(t *testing.T, s *session, before map[string]bool, d time.Duration, what string) *model.Post {
	t.Helper()
	var done *model.Post
	if !steps.Poll(d, func() bool {
		if ps := w.doneReplies(s, before); len(ps) > 0 {
			done = ps[0]
			return true
		}
		return false
	}) {
		t.Errorf("%s: no bot reply with a \"✓ Done\" line in the session thread within %v; new bot posts: %s",
			what, d, steps.DescribePosts(w.botThreadPosts(s, before, false)))
	}
	return done
}

func (w *world) waitCard(t *testing.T, s *session, before map[string]bool, d time.Duration) *model.Post {
	t.Helper()
	var card *model.Post
	if !steps.Poll(d, func() bool {
		if cs := w.botThreadPosts(s, before, true); len(cs) > 0 {
			card = cs[0]
			return true
		}
		return false
	}) {
		t.Fatalf("no approval card in the thread within %v; new bot posts: %s", d, steps.DescribePosts(w.botThreadPosts(s, before, false)))
	}
	return card
}

// requestWith is the first model request after mark whose text holds every want.
func (w *world) requestWith(mark int, want ...string) *fakemodel.Request {
	for _, r := range w.model.Since(mark) {
		all := true
		for _, x := range want {
			all = all && strings.Contains(r.Text, x)
		}
		if all {
			return &r
		}
	}
	return nil
}

// leaseRecord is the contract's lease value.
type leaseRecord struct {
	Node      string `json:"node"`
	Fence     uint64 `json:"fence"`
	ExpiresAt int64  `json:"expires_at"`
}

// lease reads lease_<session id> from the shared KV store (ok false: absent or unreadable).
func (w *world) lease(s *session) (leaseRecord, bool) {
	var l leaseRecord
	v, ok := w.api.KVSnapshot()["lease_"+s.id]
	if !ok || json.Unmarshal(v, &l) != nil {
		return l, false
	}
	return l, true
}

// clisOf are the CLIs serving a session (their working directory is its project), by node.
func (w *world) clisOf(s *session) map[string][]harness.CLIProc {
	out := map[string][]harness.CLIProc{}
	for node, procs := range w.c.CLIProcesses() {
		for _, p := range procs {
			if p.Cwd == s.project {
				out[node] = append(out[node], p)
			}
		}
	}
	return out
}

func envSeconds(name string, def int) time.Duration {
	if v := os.Getenv(name); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return time.Duration(def) * time.Second
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err == nil && n > 0 {
			return n
		}
	}
	return def
}

// refusal says whether a command's reply refuses it (no session here, or no answer from the
// session's node).
func refusal(reply string) bool {
	return containsAny(reply, "No Claude Code session", "did not answer")
}

// patience is how long to wait for the turn a command should start.
func patience(reply string) time.Duration {
	if refusal(reply) {
		return refusedWait
	}
	return turnTimeout
}
