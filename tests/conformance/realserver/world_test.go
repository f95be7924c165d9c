package realserver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

const (
	password    = "Passw0rd-e2e!"
	turnTimeout = 120 * time.Second // one model turn on the real CLI
	postTimeout = 30 * time.Second  // a post the plugin makes outside a turn
)

// counter counts the scenario's steps.
var counter steps.Counter

// person is a user with a logged-in client and a websocket that records every event.
type person struct {
	name   string
	user   *model.User
	client *model.Client4
	ws     *model.WebSocketClient

	mu     sync.Mutex
	events []*model.WebSocketEvent
}

func (p *person) listen() {
	for ev := range p.ws.EventChannel {
		p.mu.Lock()
		p.events = append(p.events, ev)
		p.mu.Unlock()
	}
}

// mark is the number of events seen so far.
func (p *person) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

// eventsSince returns the events of one type after a mark.
func (p *person) eventsSince(mark int, typ model.WebsocketEventType) []*model.WebSocketEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*model.WebSocketEvent
	for _, ev := range p.events[min(mark, len(p.events)):] {
		if ev.EventType() == typ {
			out = append(out, ev)
		}
	}
	return out
}

// waitEvent polls for an event of a type after mark that satisfies ok.
func (p *person) waitEvent(mark int, typ model.WebsocketEventType, d time.Duration, ok func(*model.WebSocketEvent) bool) *model.WebSocketEvent {
	var found *model.WebSocketEvent
	steps.Poll(d, func() bool {
		for _, ev := range p.eventsSince(mark, typ) {
			if ok(ev) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// postOf decodes the post carried by a posted / post_edited / ephemeral_message event.
func postOf(ev *model.WebSocketEvent) *model.Post {
	s, _ := ev.GetData()["post"].(string)
	var p model.Post
	if s == "" || json.Unmarshal([]byte(s), &p) != nil {
		return nil
	}
	return &p
}

// world is the real server with its people, the fake model and the plugin's inputs.
type world struct {
	ctx     context.Context
	base    string
	pg      *Postgres
	srv     *Server
	model   *fakemodel.Model
	tarball string
	cli     string

	admin, owner, member, outsider *person
	team                           *model.Team
	channel, secret                *model.Channel
	botID                          string

	roots, project string
	rootPostID     string // the session thread (start step)
	sessionID      string // its id in the REST API (api steps)
	expected       []expectedLog
}

func mustEnv(t *testing.T, name, why string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set (%s); run `make e2e-server`", name, why)
	}
	return v
}

func newWorld(t *testing.T) *world {
	build, err := BuildFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{ctx: context.Background()}
	w.tarball = mustEnv(t, "CLAUDE_CODE_TARBALL", "the dist tarball")
	w.cli = mustEnv(t, "CLAUDE_CLI", "the pinned Claude Code CLI")
	fake, err := fakemodel.Binary()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: the postgres user must reach it, and a failed run keeps it for reading.
	if w.base, err = os.MkdirTemp("", "claude-code-e2e-server-"); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(w.base, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept for reading: %s (server log %s)", w.base, w.srv.LogFile)
			return
		}
		_ = os.RemoveAll(w.base)
	})
	w.model = fakemodel.New(fake, filepath.Join(w.base, "model"))
	if err := os.MkdirAll(w.model.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.model.Start("idle", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.model.Stop)

	started := time.Now()
	if w.pg, err = StartPostgres(filepath.Join(w.base, "pg")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.pg.Stop)
	if w.srv, err = NewServer(build, filepath.Join(w.base, "server"), w.pg.DSN()); err != nil {
		t.Fatal(err)
	}
	if err := w.srv.Start(w.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.srv.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log tail:\n%s", w.logTail(60))
		}
	})
	t.Logf("PostgreSQL on %d and Mattermost at %s up in %v", w.pg.Port, w.srv.URL, time.Since(started).Round(time.Millisecond))

	w.roots = filepath.Join(w.base, "projects")
	w.project = filepath.Join(w.roots, "app")
	if err := os.MkdirAll(w.project, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.project, "README.md"), []byte("# app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.people(t)
	return w
}

// people creates the admin (the first account is system admin), a team, the owner, a channel
// member, a team member outside the channel, a public channel and a private one.
func (w *world) people(t *testing.T) {
	newPerson := func(name string) *person {
		c := model.NewAPIv4Client(w.srv.URL)
		u := &model.User{Username: name, Email: name + "@e2e.test", Password: password}
		var err error
		if w.admin == nil {
			u, _, err = c.CreateUser(w.ctx, u)
		} else {
			u, _, err = w.admin.client.CreateUser(w.ctx, u)
		}
		if err != nil {
			t.Fatalf("create user %s: %v", name, err)
		}
		if _, _, err := c.Login(w.ctx, name, password); err != nil {
			t.Fatalf("login %s: %v", name, err)
		}
		p := &person{name: name, user: u, client: c}
		wsURL := strings.Replace(w.srv.URL, "http://", "ws://", 1)
		if p.ws, err = model.NewWebSocketClient4(wsURL, c.AuthToken); err != nil {
			t.Fatalf("websocket %s: %v", name, err)
		}
		p.ws.Listen()
		go p.listen()
		t.Cleanup(p.ws.Close)
		return p
	}
	w.admin = newPerson("admin")
	var err error
	if w.team, _, err = w.admin.client.CreateTeam(w.ctx, &model.Team{Name: "e2e", DisplayName: "E2E", Type: model.TeamOpen}); err != nil {
		t.Fatal(err)
	}
	w.owner, w.member, w.outsider = newPerson("owner"), newPerson("member"), newPerson("outsider")
	for _, p := range []*person{w.owner, w.member, w.outsider} {
		if _, _, err := w.admin.client.AddTeamMember(w.ctx, w.team.Id, p.user.Id); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(name string, typ model.ChannelType, members ...*person) *model.Channel {
		ch, _, err := w.owner.client.CreateChannel(w.ctx, &model.Channel{TeamId: w.team.Id, Name: name, DisplayName: name, Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range members {
			if _, _, err := w.owner.client.AddChannelMember(w.ctx, ch.Id, p.user.Id); err != nil {
				t.Fatal(err)
			}
		}
		return ch
	}
	w.channel = mk("claude-town", model.ChannelTypeOpen, w.member)
	w.secret = mk("secret", model.ChannelTypePrivate)
}

// settings are the plugin settings of a working installation; over adds or replaces keys.
func (w *world) settings(over map[string]any) map[string]any {
	s := map[string]any{
		"AllowedProjectRoots":    w.roots,
		"ClaudeCliPath":          w.cli,
		"AnthropicApiKey":        "sk-ant-e2e-fake",
		"AnthropicBaseUrl":       w.model.URL,
		"WhoCanStart":            "everyone",
		"WhoCanApprove":          "owner",
		"MaxConcurrentSessions":  5,
		"IdleTimeoutMinutes":     60,
		"ApprovalTimeoutMinutes": 10,
		"CommandsPerMinute":      0,
	}
	for k, v := range over {
		s[k] = v
	}
	return s
}

// cmdAnswer is what one /claude command gave: the HTTP answer and the ephemeral posts the
// websocket delivered for it.
type cmdAnswer struct {
	resp       *model.CommandResponse
	err        error
	ephemerals []string
}

// text is the one answer a person reads: the ephemeral post, or the HTTP text when no
// ephemeral post came.
func (a cmdAnswer) text() string {
	if len(a.ephemerals) > 0 {
		return strings.Join(a.ephemerals, "\n")
	}
	if a.resp != nil {
		return a.resp.Text
	}
	return ""
}

// command runs a slash command as p in ch, as a client does, and collects the ephemeral posts
// that arrive within a short while.
func (w *world) command(p *person, ch *model.Channel, text string) cmdAnswer {
	mark := p.mark()
	// With the team, as the webapp sends it: the server needs it in a direct or group channel
	// (elsewhere it takes the channel's own).
	resp, _, err := p.client.ExecuteCommandWithTeam(w.ctx, ch.Id, w.team.Id, text)
	a := cmdAnswer{resp: resp, err: err}
	// The server sends the ephemeral post right after it answers; give it a moment.
	time.Sleep(400 * time.Millisecond)
	for _, ev := range p.eventsSince(mark, model.WebsocketEventEphemeralMessage) {
		if post := postOf(ev); post != nil && post.ChannelId == ch.Id {
			a.ephemerals = append(a.ephemerals, post.Message)
		}
	}
	return a
}

// mustSay runs a command and fails unless the answer contains every want.
func (w *world) mustSay(t *testing.T, p *person, ch *model.Channel, text string, want ...string) cmdAnswer {
	t.Helper()
	a := w.command(p, ch, text)
	if a.err != nil {
		t.Fatalf("%s: %s: %v", p.name, text, a.err)
	}
	for _, s := range want {
		if !strings.Contains(a.text(), s) {
			t.Fatalf("%s: %q answered %q, want it to contain %q", p.name, text, a.text(), s)
		}
	}
	return a
}

// threadPosts are the posts of the session thread, oldest first.
func (w *world) threadPosts(t *testing.T) []*model.Post {
	t.Helper()
	if w.rootPostID == "" {
		t.Fatal("no session thread (the start step failed)")
	}
	list, _, err := w.owner.client.GetPostThread(w.ctx, w.rootPostID, "", false)
	if err != nil {
		t.Fatalf("thread: %v", err)
	}
	list.SortByCreateAt()
	var out []*model.Post
	for i := len(list.Order) - 1; i >= 0; i-- {
		out = append(out, list.Posts[list.Order[i]])
	}
	return out
}

// logTail is the end of the server's log: its warnings and errors and the plugin's lines.
func (w *world) logTail(n int) string {
	var lines []LogEntry
	for _, e := range w.srv.Log() {
		if e.Level == "warn" || e.Level == "error" || e.Fields["plugin_id"] == PluginID {
			lines = append(lines, e)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var sb strings.Builder
	for _, l := range lines {
		fmt.Fprintln(&sb, l.Raw)
	}
	return sb.String()
}
