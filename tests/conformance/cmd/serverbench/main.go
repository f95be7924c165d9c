// Command serverbench measures issue 10's targets on a real Mattermost server, started once
// (make bench-server):
//
//   - CLI text → live event: a text chunk released to the CLI by the fake Messages API (through
//     a proxy that notes the moment, proxy.go) until a websocket client of the server receives
//     the custom_claude-code_message event carrying it; p50 and p99 over every chunk of a turn;
//   - UpdatePost calls per 30 s turn: post_edited events of the turn's post over a turn of
//     continuous text, for the plugin before the change (-before, a tarball of the previous
//     version, installed first in the same server) and after (force-uploaded over it);
//   - GET /sessions/{id} under 50 concurrent clients for 5 s: p50 and p99 (and the same load on
//     GET /api/v4/users/me, the server alone, for reference).
//
// It prints one summary line per measure and exits 0 unless the setup fails.
//
//	go run ./cmd/serverbench [-before old.tar.gz] (env as make e2e-server: MM_SERVER_BIN,
//	MM_SERVER_SRC, CLAUDE_CODE_TARBALL, CLAUDE_CLI, FAKE_ANTHROPIC)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/realserver"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

const password = "Bench-Passw0rd!"

type bench struct {
	ctx       context.Context
	dir       string
	srv       *realserver.Server
	model     *fakemodel.Model
	proxy     *realserver.ReleaseProxy
	admin     *model.Client4
	user      *model.Client4
	userTok   string
	botID     string
	channel   *model.Channel
	project   string
	root      string // the session's thread
	cli       string
	posts     *postWatch
	turnWords int
	wordDelay int // ms between chunks
}

func main() {
	before := flag.String("before", "", "a tarball of the plugin before the change (UpdatePost 'before' figure); empty: not measured")
	words := flag.Int("words", 300, "text chunks of the measured turn (≥ 200 latency samples)")
	delay := flag.Int("delay", 100, "ms between chunks: words × delay is the turn's length (30 s)")
	clients := flag.Int("clients", 50, "concurrent REST clients")
	restFor := flag.Duration("rest", 5*time.Second, "how long the REST clients run")
	keep := flag.Bool("keep", false, "keep the state directory")
	flag.Parse()
	b := &bench{ctx: context.Background(), turnWords: *words, wordDelay: *delay}
	if err := b.run(*before, *clients, *restFor, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "serverbench:", err)
		os.Exit(1)
	}
}

func (b *bench) run(before string, clients int, restFor time.Duration, keep bool) error {
	build, err := realserver.BuildFromEnv()
	if err != nil {
		return err
	}
	tarball, cli := os.Getenv("CLAUDE_CODE_TARBALL"), os.Getenv("CLAUDE_CLI")
	if tarball == "" || cli == "" {
		return errors.New("CLAUDE_CODE_TARBALL and CLAUDE_CLI must be set (make bench-server sets them)")
	}
	b.cli = cli
	fake, err := fakemodel.Binary()
	if err != nil {
		return err
	}
	if b.dir, err = os.MkdirTemp("", "claude-code-serverbench-"); err != nil {
		return err
	}
	if keep {
		fmt.Println("serverbench: state in", b.dir)
	} else {
		defer os.RemoveAll(b.dir)
	}
	if err := os.Chmod(b.dir, 0o755); err != nil {
		return err
	}
	b.model = fakemodel.New(fake, filepath.Join(b.dir, "model"))
	if err := os.MkdirAll(b.model.Dir, 0o755); err != nil {
		return err
	}
	if err := b.model.Start("idle", nil); err != nil {
		return err
	}
	defer b.model.Stop()
	if b.proxy, err = realserver.StartReleaseProxy(b.model.URL); err != nil {
		return err
	}
	defer b.proxy.Close()
	pg, err := realserver.StartPostgres(filepath.Join(b.dir, "pg"))
	if err != nil {
		return err
	}
	defer pg.Stop()
	if b.srv, err = realserver.NewServer(build, filepath.Join(b.dir, "server"), pg.DSN()); err != nil {
		return err
	}
	if err := b.srv.Start(b.ctx); err != nil {
		return err
	}
	defer b.srv.Stop()
	if err := b.people(); err != nil {
		return err
	}

	var beforeEdits int
	if before != "" {
		if err := b.install(before); err != nil {
			return fmt.Errorf("the 'before' plugin: %w", err)
		}
		if err := b.startSession(); err != nil {
			return fmt.Errorf("the 'before' plugin: %w", err)
		}
		t, err := b.turn("before")
		if err != nil {
			return fmt.Errorf("the 'before' plugin's turn: %w", err)
		}
		beforeEdits = t.edits
		fmt.Printf("serverbench: before (%s): the %v turn's post was written %d times (post_edited)\n",
			filepath.Base(before), t.length.Round(100*time.Millisecond), t.edits)
	}
	if err := b.install(tarball); err != nil {
		return err
	}
	if before == "" {
		if err := b.startSession(); err != nil {
			return err
		}
	}
	t, err := b.turn("after")
	if err != nil {
		return err
	}
	lat := t.latencies
	if len(lat) == 0 {
		return errors.New("no chunk was matched to a live message event")
	}
	fmt.Printf("serverbench: CLI text → custom_claude-code_message on a websocket client: p50 %s, p99 %s, max %s over %d chunks (%d released, one every %d ms)\n",
		realserver.Ms(realserver.Pct(lat, 50)), realserver.Ms(realserver.Pct(lat, 99)), realserver.Ms(realserver.Pct(lat, 100)), len(lat), t.released, b.wordDelay)
	if before != "" {
		ratio := "∞"
		if t.edits > 0 {
			ratio = fmt.Sprintf("%.1f×", float64(beforeEdits)/float64(t.edits))
		}
		fmt.Printf("serverbench: UpdatePost per %v turn: before %d, after %d (%s fewer; target ≥ 5×)\n",
			t.length.Round(time.Second), beforeEdits, t.edits, ratio)
	} else {
		fmt.Printf("serverbench: UpdatePost per %v turn: after %d; before not measured in this run (no -before tarball)\n",
			t.length.Round(time.Second), t.edits)
	}
	return b.restLoad(clients, restFor)
}

// people: the admin (first account), a user who owns the session, a team and a channel.
func (b *bench) people() error {
	b.admin = model.NewAPIv4Client(b.srv.URL)
	if _, _, err := b.admin.CreateUser(b.ctx, &model.User{Username: "admin", Email: "admin@bench.test", Password: password}); err != nil {
		return err
	}
	if _, _, err := b.admin.Login(b.ctx, "admin", password); err != nil {
		return err
	}
	u, _, err := b.admin.CreateUser(b.ctx, &model.User{Username: "alice", Email: "alice@bench.test", Password: password})
	if err != nil {
		return err
	}
	team, _, err := b.admin.CreateTeam(b.ctx, &model.Team{Name: "bench", DisplayName: "Bench", Type: model.TeamOpen})
	if err != nil {
		return err
	}
	if _, _, err := b.admin.AddTeamMember(b.ctx, team.Id, u.Id); err != nil {
		return err
	}
	if b.channel, _, err = b.admin.CreateChannel(b.ctx, &model.Channel{TeamId: team.Id, Name: "bench", DisplayName: "Bench", Type: model.ChannelTypeOpen}); err != nil {
		return err
	}
	if _, _, err := b.admin.AddChannelMember(b.ctx, b.channel.Id, u.Id); err != nil {
		return err
	}
	b.user = model.NewAPIv4Client(b.srv.URL)
	if _, _, err := b.user.Login(b.ctx, "alice", password); err != nil {
		return err
	}
	b.userTok = b.user.AuthToken
	b.project = filepath.Join(b.dir, "projects", "app")
	if err := os.MkdirAll(b.project, 0o755); err != nil {
		return err
	}
	b.posts, err = watchPosts(b.srv.URL, b.userTok)
	return err
}

// install uploads (replacing) and configures the plugin.
func (b *bench) install(tarball string) error {
	m, err := realserver.Install(b.ctx, b.admin, tarball)
	if err != nil {
		return err
	}
	if err := realserver.Configure(b.ctx, b.admin, map[string]any{
		"AllowedProjectRoots": filepath.Dir(b.project), "ClaudeCliPath": b.cli,
		"AnthropicApiKey": "sk-ant-bench-fake", "AnthropicBaseUrl": b.proxy.URL,
		"WhoCanStart": "everyone", "WhoCanApprove": "owner", "MaxConcurrentSessions": 5,
		"IdleTimeoutMinutes": 60, "ApprovalTimeoutMinutes": 10, "CommandsPerMinute": 0,
	}); err != nil {
		return err
	}
	if err := realserver.WaitActive(b.ctx, b.admin, time.Minute); err != nil {
		return err
	}
	bot, _, err := b.admin.GetUserByUsername(b.ctx, "claude", "")
	if err != nil {
		return err
	}
	b.botID = bot.Id
	fmt.Printf("serverbench: plugin %s running on %s\n", m.Version, b.srv.URL)
	return nil
}

func (b *bench) command(text string) error {
	_, _, err := b.user.ExecuteCommand(b.ctx, b.channel.Id, text)
	return err
}

func (b *bench) startSession() error {
	mark := b.posts.mark()
	if err := b.command("/claude start " + b.project); err != nil {
		return err
	}
	root := b.posts.wait(mark, time.Minute, func(p *model.Post, _ bool) bool {
		return p.UserId == b.botID && p.RootId == "" && strings.Contains(p.Message, "session started")
	})
	if root == nil {
		return errors.New("no session root post within a minute")
	}
	b.root = root.Id
	return nil
}

// turnResult is one measured turn.
type turnResult struct {
	edits     int             // post_edited events of the turn's post
	length    time.Duration   // first chunk released → the closing line
	latencies []time.Duration // per chunk: released → in a message event on the websocket
	released  int
}

// turn prompts one turn of continuous text (turnWords chunks, wordDelay apart) and measures it.
func (b *bench) turn(label string) (turnResult, error) {
	var res turnResult
	marker := "b" + steps.RandHex(2) // unique per turn: chunks of both turns share no text
	words := make([]string, b.turnWords)
	for i := range words {
		words[i] = fmt.Sprintf("%s%03d", marker, i)
	}
	if err := b.model.Start("turn-"+label, []map[string]any{fakemodel.TextTurn(strings.Join(words, " "), b.wordDelay)}); err != nil {
		return res, err
	}
	tap, err := realserver.NewLiveTap(b.srv.URL, b.userTok)
	if err != nil {
		return res, err
	}
	defer tap.Close()
	mark := b.posts.mark()
	if err := b.command("/claude Please stream the " + label + " report"); err != nil {
		return res, err
	}
	deadline := time.Duration(b.turnWords*b.wordDelay)*time.Millisecond + 3*time.Minute
	// The turn's post is the bot's thread post that gets the closing line (a resumed session may
	// post a notice first).
	done := b.posts.wait(mark, deadline, func(p *model.Post, _ bool) bool {
		return p.UserId == b.botID && p.RootId == b.root && steps.HasDoneLine(p.Message)
	})
	if done == nil {
		return res, fmt.Errorf("no turn post with a closing line within %v", deadline)
	}
	closedAt := time.Now()
	time.Sleep(time.Second) // the last message event
	res.edits = b.posts.count(mark, done.Id)

	released := b.proxy.Released()
	messages := allMessages(tap)
	var firstRelease time.Time
	for _, w := range words {
		rel, ok := realserver.ReleaseOf(released, w)
		if !ok {
			continue
		}
		res.released++
		if firstRelease.IsZero() || rel.Before(firstRelease) {
			firstRelease = rel
		}
		if at, ok := arrivalOf(messages, w); ok {
			res.latencies = append(res.latencies, at.Sub(rel))
		}
	}
	if !firstRelease.IsZero() {
		res.length = closedAt.Sub(firstRelease)
	}
	return res, nil
}

// allMessages are the message events of every session, in arrival order.
func allMessages(tap *realserver.LiveTap) []realserver.LiveEvent {
	var out []realserver.LiveEvent
	for _, e := range tap.Since(0, "") {
		if e.Name == "message" {
			out = append(out, e)
		}
	}
	return out
}

// arrivalOf is when the first message event containing word arrived.
func arrivalOf(messages []realserver.LiveEvent, word string) (time.Time, bool) {
	for _, e := range messages {
		if strings.Contains(e.Str("text"), word) {
			return e.Arrived, true
		}
	}
	return time.Time{}, false
}

// restLoad runs clients goroutines calling GET /sessions/{id} for d, then the same load on the
// server alone (GET /api/v4/users/me, same token) for reference.
func (b *bench) restLoad(clients int, d time.Duration) error {
	c := &realserver.APIClient{Site: b.srv.URL, Token: b.userTok, HTTP: &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2},
		Timeout:   30 * time.Second,
	}}
	var list struct {
		Sessions []realserver.Session `json:"sessions"`
	}
	resp, err := c.Do(b.ctx, "GET", "/sessions", nil)
	if err != nil {
		return err
	}
	if err := resp.JSON(&list); err != nil || len(list.Sessions) == 0 {
		return fmt.Errorf("GET /sessions: %v %s", err, resp)
	}
	for _, target := range []struct{ label, path string }{
		{"GET /sessions/{id}", "/sessions/" + list.Sessions[0].ID},
		{"reference, the server alone: GET /api/v4/users/me", "/api/v4/users/me"},
	} {
		lat, failed := load(b.ctx, c, target.path, clients, d)
		if len(lat) == 0 {
			return fmt.Errorf("GET %s never answered 200 (%d failures)", target.path, failed)
		}
		fmt.Printf("serverbench: %s, %d concurrent clients for %v: p50 %s, p99 %s, %d requests (%.0f/s), %d failed\n",
			target.label, clients, d, realserver.Ms(realserver.Pct(lat, 50)), realserver.Ms(realserver.Pct(lat, 99)), len(lat), float64(len(lat))/d.Seconds(), failed)
	}
	return nil
}

// load has clients goroutines GET path for d; the latencies of the 200s and the failures.
func load(ctx context.Context, c *realserver.APIClient, path string, clients int, d time.Duration) ([]time.Duration, int) {
	var mu sync.Mutex
	var lat []time.Duration
	failed := 0
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for time.Now().Before(stop) {
				t0 := time.Now()
				r, err := c.Do(ctx, "GET", path, nil)
				if err != nil || r.Status != http.StatusOK {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat, failed = append(lat, mine...), failed+bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, failed
}

// postWatch keeps every posted and post_edited event a user's websocket receives.
type postWatch struct {
	mu    sync.Mutex
	posts []watched
}

type watched struct {
	post   *model.Post
	edited bool
}

func watchPosts(site, token string) (*postWatch, error) {
	ws, err := model.NewWebSocketClient4(strings.Replace(site, "http://", "ws://", 1), token)
	if err != nil {
		return nil, err
	}
	ws.Listen()
	pw := &postWatch{}
	go func() {
		for ev := range ws.EventChannel {
			typ := ev.EventType()
			if typ != model.WebsocketEventPosted && typ != model.WebsocketEventPostEdited {
				continue
			}
			s, _ := ev.GetData()["post"].(string)
			var p model.Post
			if json.Unmarshal([]byte(s), &p) == nil {
				pw.mu.Lock()
				pw.posts = append(pw.posts, watched{&p, typ == model.WebsocketEventPostEdited})
				pw.mu.Unlock()
			}
		}
	}()
	return pw, nil
}

func (pw *postWatch) mark() int {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return len(pw.posts)
}

func (pw *postWatch) wait(mark int, d time.Duration, ok func(p *model.Post, edited bool) bool) *model.Post {
	var found *model.Post
	steps.Poll(d, func() bool {
		pw.mu.Lock()
		defer pw.mu.Unlock()
		for _, w := range pw.posts[mark:] {
			if ok(w.post, w.edited) {
				found = w.post
				return true
			}
		}
		return false
	})
	return found
}

// count is the number of post_edited events for a post after mark.
func (pw *postWatch) count(mark int, id string) int {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	n := 0
	for _, w := range pw.posts[mark:] {
		if w.edited && w.post.Id == id {
			n++
		}
	}
	return n
}
