// Package chatscenario is the acceptance scenario of "Claude in the channel" (/work/chat-contract.md,
// summarised in ../README.md): the plugin tarball under Mattermost's real host code
// (plugin.Environment) against harness.FakeAPI, the REAL Claude Code CLI, and the scripted fake
// Messages API (crates/fake-anthropic). Hooks are driven exactly as the server drives them.
//
//	CLAUDE_CODE_TARBALL=<dist tarball>   required (the test skips without it)
//	CLAUDE_CLI=<claude executable>       default tools/claude/node_modules/.bin/claude
//	FAKE_ANTHROPIC=<fake-anthropic>      default: cargo build -p fake-anthropic
//
// The steps run in order and share one session; a step that needs an earlier step's result fails
// at once (naming it) when that result is missing, so a plugin without the feature fails fast.
package chatscenario

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/harness"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

var counter steps.Counter

func TestMain(m *testing.M) {
	code := m.Run()
	fmt.Println(counter.Summary("chatscenario"))
	os.Exit(code)
}

func setup(t *testing.T) *scenario {
	tarball := os.Getenv("CLAUDE_CODE_TARBALL")
	var err error
	switch {
	case tarball != "":
		if tarball, err = filepath.Abs(tarball); err != nil {
			t.Fatal(err)
		}
	case os.Getenv("CHATSCENARIO_STUB") != "":
		// Validating the scenario itself: the Go stand-in of the contract (./chatstub).
		if tarball, err = buildStub(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	default:
		t.Skip("CLAUDE_CODE_TARBALL unset: the chat scenario needs the plugin tarball (make e2e-chat sets it)")
	}
	t.Logf("plugin under test: %s", tarball)
	cli := harness.ClaudeCLI(t)
	fakeBin, err := fakemodel.Binary()
	if err != nil {
		t.Fatal(err)
	}

	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &scenario{
		base:    base,
		roots:   filepath.Join(base, "roots"),
		dataDir: filepath.Join(base, "data"),
		cli:     cli,
		markers: map[string]string{},
	}
	s.project = filepath.Join(s.roots, "proj")
	s.makeTree(t)

	// The plugin inherits the environment: a leaked /proc/self/environ shows this marker.
	s.envMarker = "CHATSCENARIO-ENV-" + steps.RandHex(6)
	os.Setenv("CHATSCENARIO_ENV_MARKER", s.envMarker)

	s.model = fakemodel.New(fakeBin, filepath.Join(base, "fake"))
	if err := os.MkdirAll(s.model.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.model.Stop)
	if err := s.model.Start("boot", nil); err != nil {
		t.Fatal(err)
	}

	s.logs = &mlog.Buffer{}
	if s.logger, err = harness.NewLogger(s.logs); err != nil {
		t.Fatal(err)
	}
	if s.host, err = harness.NewHost(tarball, filepath.Join(base, "host"), s.logger); err != nil {
		t.Fatal(err)
	}
	s.api = s.host.API
	s.api.SetConfig(map[string]any{
		"AllowedProjectRoots": s.roots,
		"ClaudeCliPath":       cli,
		"AnthropicApiKey":     "sk-test",
		"AnthropicBaseUrl":    s.model.URL,
		"DataDirectory":       s.dataDir,
		"CommandsPerMinute":   30,
	})
	s.api.AddTeam(&model.Team{Id: teamID, Name: teamName, DisplayName: "Team One", Type: model.TeamOpen})
	for _, u := range append([]string{owner, member, outsider}, readers...) {
		s.api.AddUser(&model.User{Id: u, Username: strings.TrimPrefix(u, "u-"), Roles: "system_user"})
	}
	s.api.AddChannel(&model.Channel{Id: channelID, TeamId: teamID, Type: model.ChannelTypeOpen, Name: "main", DisplayName: "Main"})
	s.api.AddChannel(&model.Channel{Id: otherChan, TeamId: teamID, Type: model.ChannelTypeOpen, Name: "other", DisplayName: "Other"})
	s.api.AddChannel(&model.Channel{Id: secretChan, TeamId: teamID, Type: model.ChannelTypePrivate, Name: "secret", DisplayName: "Secret"})
	for _, u := range append([]string{owner, member}, readers...) {
		s.api.AddMember(channelID, u)
	}
	s.api.AddMember(otherChan, owner)
	s.api.AddMember(otherChan, member)
	s.api.AddMember(secretChan, member) // the owner is NOT a member of c-secret

	t.Cleanup(func() {
		s.host.Env.Shutdown()
		// The CLI processes this run started (through the plugin), by pid.
		for _, p := range s.relatedProcesses() {
			if pid := pidOf(p); pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			_ = s.logger.Flush()
			t.Logf("host log tail:\n%s", tail(s.logs.String(), 80))
			t.Logf("unmodelled API calls: %v", s.api.Missing())
			logs := s.api.Logs()
			if len(logs) > 60 {
				logs = logs[len(logs)-60:]
			}
			var lines []string
			for _, l := range logs {
				lines = append(lines, fmt.Sprintf("%s %s %v", l.Level, l.Message, l.KV))
			}
			t.Logf("plugin API log tail:\n%s", strings.Join(lines, "\n"))
			if b, err := os.ReadFile(s.model.LogPath); err == nil {
				keep := filepath.Join(os.TempDir(), fmt.Sprintf("chatscenario-requests-%d.jsonl", os.Getpid()))
				if os.WriteFile(keep, b, 0o644) == nil {
					t.Logf("the fake model's full request log is kept in %s", keep)
				}
			}
		}
	})
	return s
}

// buildStub builds ./chatstub for this platform and packs it like make dist (the same binary
// under both manifest names: only this platform's is started).
func buildStub(dir string) (string, error) {
	bin := filepath.Join(dir, "chatstub")
	cmd := exec.Command("go", "build", "-o", bin, "./chatstub")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./chatstub: %v\n%s", err, out)
	}
	manifest, err := harness.ServerOnlyManifest()
	if err != nil {
		return "", err
	}
	tgz := filepath.Join(dir, "chatstub.tar.gz")
	return tgz, harness.WriteTarball(tgz, manifest, map[string]string{
		"server/dist/plugin-linux-amd64": bin, "server/dist/plugin-linux-arm64": bin})
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// makeTree builds roots/ (proj with files and escape traps, sibling with a secret), outside/.
func (s *scenario) makeTree(t *testing.T) {
	r := steps.RandHex(6)
	s.markers["sibling secret"] = "SIBLING-SECRET-" + r
	s.markers["outside secret"] = "OUTSIDE-SECRET-" + r
	s.markers["sibling listing"] = "sibling-canary-" + r + ".txt"
	s.markers["outside listing"] = "outside-canary-" + r + ".txt"
	s.markers["readme"] = "README-CONTENT-" + r
	s.markers["main.go"] = "MAIN-GO-CONTENT-" + r
	writeFile(t, filepath.Join(s.roots, "sibling", "secret.txt"), s.markers["sibling secret"]+"\n")
	writeFile(t, filepath.Join(s.roots, "sibling", s.markers["sibling listing"]), "x\n")
	writeFile(t, filepath.Join(s.base, "outside", "secret.txt"), s.markers["outside secret"]+"\n")
	writeFile(t, filepath.Join(s.base, "outside", s.markers["outside listing"]), "x\n")
	writeFile(t, filepath.Join(s.roots, "afile.txt"), "not a directory\n")
	if err := os.MkdirAll(filepath.Join(s.base, "elsewhere"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.project, "README.md"), "# Demo\n"+s.markers["readme"]+"\n")
	writeFile(t, filepath.Join(s.project, "src", "main.go"), "package main // "+s.markers["main.go"]+"\n")
	links := map[string]string{
		"link_etc":        "/etc",
		"link_hostname":   "/etc/hostname",
		"link_passwd":     "/etc/passwd",
		"link_parent":     "..",
		"link_sibling":    "../sibling",
		"link_secret":     "../sibling/secret.txt",
		"link_abs_secret": filepath.Join(s.base, "outside", "secret.txt"),
		"link_root":       "/",
		"chain1":          "chain2",
		"chain2":          "/etc",
		"src/up":          "../..",
		"link_devnull":    "/dev/null",
		"link_proc":       "/proc/self",
		"loop_a":          "loop_b",
		"loop_b":          "loop_a",
		"dangling":        "/nonexistent-" + r,
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(s.project, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(s.project, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (s *scenario) activate(t *testing.T) {
	t.Helper()
	_, ok, err := s.host.Env.Activate(harness.PluginID)
	if err != nil || !ok {
		t.Fatalf("Activate: activated=%v err=%v", ok, err)
	}
	if s.hooks, err = s.host.Env.HooksForPlugin(harness.PluginID); err != nil {
		t.Fatal(err)
	}
	for _, b := range s.api.Bots() {
		if b.Username == "claude" {
			s.botID = b.UserId
		}
	}
	if s.botID == "" {
		t.Fatalf("no bot with username claude: %+v", s.api.Bots())
	}
}

func TestChatScenario(t *testing.T) {
	s := setup(t)
	if !counter.Check(t, "0_activate", s.activate) {
		t.Fatal("the plugin does not activate; nothing else can run")
	}
	// A step that needs the session fails at once without it.
	needSession := func(t *testing.T) {
		t.Helper()
		if s.rootPostID == "" {
			t.Fatal("needs the session started in 1_start (it failed)")
		}
	}

	counter.Check(t, "1_start", func(t *testing.T) { s.stepStart(t) })
	counter.Check(t, "2_streamed_reply", func(t *testing.T) { needSession(t); s.stepStream(t) })
	counter.Check(t, "3_approval_card", func(t *testing.T) { needSession(t); s.stepApprove(t) })
	counter.Check(t, "4_deny_with_reason", func(t *testing.T) { needSession(t); s.stepDenyReason(t) })
	counter.Check(t, "5_context_thread", func(t *testing.T) { needSession(t); s.stepContextThread(t) })
	counter.Check(t, "6_files_hostile_paths", func(t *testing.T) { needSession(t); s.stepFiles(t) })
	counter.Check(t, "7_thread_reply", func(t *testing.T) { needSession(t); s.stepThreadReply(t) })
	counter.Check(t, "8_restart_resume", func(t *testing.T) { needSession(t); s.stepRestart(t) })
	counter.Check(t, "9_crash_withdraws_card", func(t *testing.T) { needSession(t); s.stepCrash(t) })
	counter.Check(t, "10_rate_limit", func(t *testing.T) { s.stepRateLimit(t) })
	counter.Check(t, "12_server_outage", func(t *testing.T) { needSession(t); s.stepOutage(t) })
	counter.Check(t, "11_stop", func(t *testing.T) { needSession(t); s.stepStop(t) })
}

// 1: start refusals, a started session, status.
func (s *scenario) stepStart(t *testing.T) {
	if err := s.model.Start("start", nil); err != nil {
		t.Fatal(err)
	}
	s.mustReply(t, outsider, "/claude status", "You are not a member of this channel")
	s.mustReply(t, owner, "/claude status", "No Claude Code session in this channel")
	for _, c := range []struct{ path, want string }{
		{filepath.Join(s.base, "elsewhere"), "is not under an allowed project root"},
		{s.project + "/../../elsewhere", "is not under an allowed project root"},
		{filepath.Join(s.roots, "missing"), "does not exist"},
		{filepath.Join(s.roots, "afile.txt"), "is not a directory"},
	} {
		s.mustReply(t, owner, "/claude start "+c.path, c.want)
	}
	for _, p := range s.api.Posts(channelID) {
		if strings.Contains(p.Message, "session started") {
			t.Fatalf("a refused start created a session post: %q", p.Message)
		}
	}
	r, err := s.command(owner, "/claude start "+s.project)
	if err != nil {
		t.Fatal(err)
	}
	if containsAny(r.reply, "Unknown subcommand", "not available", "is not under", "does not exist", "is not a directory", "You are not a member") {
		t.Fatalf("/claude start %s was refused: %q", s.project, r.reply)
	}
	var root *model.Post
	if !steps.Poll(hookTimeout, func() bool {
		for _, p := range s.api.Posts(channelID) {
			if p.UserId == s.botID && strings.Contains(p.Message, "Claude Code session started") {
				root = p
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no bot post containing \"Claude Code session started\" in the channel within %v; posts: %s",
			hookTimeout, describePosts(s.api.Posts(channelID)))
	}
	if !strings.Contains(root.Message, s.project) {
		t.Errorf("session post does not name the project path %s: %q", s.project, root.Message)
	}
	if root.RootId != "" {
		t.Errorf("session post is a reply (RootId %s), want a thread root", root.RootId)
	}
	s.rootPostID = root.Id
	r = s.mustReply(t, owner, "/claude status", s.project)
	// Right after start the CLI may still be starting up.
	if !containsAny(r.reply, "starting", "idle", "running", "awaiting approval") {
		t.Errorf("/claude status names no state: %q", r.reply)
	}
	s.mustReply(t, owner, "/claude start "+s.project, "already has a session")
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// 2: one reply post, streamed in place, ending with the full text and "✓ Done".
func (s *scenario) stepStream(t *testing.T) {
	words := make([]string, 0, 70)
	for i := range 70 {
		words = append(words, fmt.Sprintf("harbour%02d", i))
	}
	text := "The harbour report: " + strings.Join(words, " ") + " end of report."
	// 70+ text deltas, 80 ms apart: ~6 s of streaming.
	if err := s.model.Start("stream", []map[string]any{fakemodel.TextTurn(text, 80)}); err != nil {
		t.Fatal(err)
	}
	before := postIDs(s.threadPosts())
	mark := s.model.Mark()
	if _, err := s.command(owner, "/claude Please write the harbour report PROMPT-HARBOUR"); err != nil {
		t.Fatal(err)
	}
	s.waitRequest(t, mark, turnTimeout, "PROMPT-HARBOUR")
	done := s.waitDone(t, before, "the streamed turn")
	if done == nil {
		return
	}
	if !strings.Contains(done.Message, text) {
		t.Errorf("final reply lacks the full streamed text:\n got %q\nwant it to contain %q", done.Message, text)
	}
	if done.RootId != s.rootPostID {
		t.Errorf("reply RootId %q, want the session root %q", done.RootId, s.rootPostID)
	}
	if n := s.api.UpdateCount(done.Id); n < 2 {
		t.Errorf("reply post got %d UpdatePost calls while ~6 s of text streamed, want >= 2", n)
	}
	partial := 0
	for _, h := range s.api.PostHistory(done.Id) {
		if h.Message != "" && !steps.HasDoneLine(h.Message) && !strings.Contains(h.Message, text) {
			partial++
		}
	}
	if partial == 0 {
		t.Errorf("no partial (streaming) version of the reply was ever stored: history %+v", s.api.PostHistory(done.Id))
	}
	if others := s.newBotPosts(before, false); len(others) != 1 {
		t.Errorf("the turn made %d bot posts in the thread, want ONE: %s", len(others), describePosts(others))
	}
}

// 3: the approval card for a Write; refused clicks change nothing; approve writes the file.
func (s *scenario) stepApprove(t *testing.T) {
	hello := filepath.Join(s.project, "hello.txt")
	if err := s.model.Start("approve", []map[string]any{
		fakemodel.WriteTurn(hello, "hello from the scenario\n"),
		fakemodel.TextTurn("I wrote hello.txt for you.", 0),
	}); err != nil {
		t.Fatal(err)
	}
	before := postIDs(s.threadPosts())
	if _, err := s.command(owner, "/claude Create hello.txt please"); err != nil {
		t.Fatal(err)
	}
	card := s.waitCard(t, before)
	checkCard(t, card, "Write", "hello.txt")
	approve := actionByID(card, "approve")
	deny := actionByID(card, "deny")
	if approve == nil || deny == nil {
		t.Fatal("the card has no approve/deny action")
	}
	s.sessionID = fmt.Sprint(approve.Integration.Context["session_id"])

	// Refused clicks while the request is pending: nothing may change.
	tamperedReq := copyContext(approve)
	tamperedReq["request_id"] = model.NewId()
	flippedSig := copyContext(approve)
	flippedSig["sig"] = flipHex(fmt.Sprint(flippedSig["sig"]))
	denyAsApprove := copyContext(deny)
	denyAsApprove["action"] = "approve"
	updates := s.api.UpdateCount(card.Id)
	for _, c := range []struct {
		name, user string
		ctx        map[string]any
	}{
		{"a non-member", outsider, copyContext(approve)},
		{"a member who is not the owner", member, copyContext(approve)},
		{"a changed request_id", owner, tamperedReq},
		{"a flipped sig character", owner, flippedSig},
		{"the deny button's context relabelled approve", owner, denyAsApprove},
	} {
		s.refused(t, c.name, c.user, card, c.ctx)
	}
	if n := s.api.UpdateCount(card.Id); n != updates {
		t.Errorf("the card got %d UpdatePost call(s) from refused clicks", n-updates)
	}
	if _, err := os.Stat(hello); err == nil {
		t.Fatal("hello.txt exists although no valid approve was clicked")
	}

	res, err := s.click(owner, card, copyContext(approve), model.NewId())
	if err != nil {
		t.Fatal(err)
	}
	if res.code != 200 || res.body["update"] == nil {
		t.Errorf("approve by the owner: status %d body %s, want 200 with an update", res.code, res.raw)
	} else if !strings.Contains(res.raw, "Approved") {
		t.Errorf("approve response does not say Approved: %s", res.raw)
	}
	if !steps.Poll(30*time.Second, func() bool {
		b, err := os.ReadFile(hello)
		return err == nil && string(b) == "hello from the scenario\n"
	}) {
		t.Errorf("hello.txt not written with the scripted content within 30 s of the approval")
	}
	if !steps.Poll(10*time.Second, func() bool { return s.api.UpdateCount(card.Id) > updates }) {
		t.Errorf("the card was not updated (UpdatePost) after the approval")
	} else {
		p, _ := s.api.GetPost(card.Id)
		if len(steps.Actions(p.GetProps())) != 0 || !strings.Contains(steps.Shown(p.Message, p.GetProps()), "Approved") {
			t.Errorf("updated card still has actions or does not say Approved: %q %v", p.Message, p.GetProps())
		}
	}
	s.waitDone(t, before, "the approved turn")
	// The same click again: refused, the card stays as it is.
	s.refused(t, "the same approve again", owner, card, copyContext(approve))
}

// refused clicks the card and expects {"ephemeral_text"} and no UpdatePost of the card.
func (s *scenario) refused(t *testing.T, name, user string, card *model.Post, ctx map[string]any) {
	t.Helper()
	updates := s.api.UpdateCount(card.Id)
	res, err := s.click(user, card, ctx, model.NewId())
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if res.code != 200 || res.ephemeral() == "" || res.body["update"] != nil {
		t.Errorf("%s: status %d body %s, want 200 {\"ephemeral_text\": ...} without an update", name, res.code, res.raw)
	}
	// The refusal is decided inside the request; give a stray async update a moment to show.
	time.Sleep(300 * time.Millisecond)
	if n := s.api.UpdateCount(card.Id); n != updates {
		t.Errorf("%s: the card got %d UpdatePost call(s)", name, n-updates)
	}
}

// 4: deny with a reason through the dialog; the model sees the reason, no file.
func (s *scenario) stepDenyReason(t *testing.T) {
	target := filepath.Join(s.project, "deny.txt")
	if err := s.model.Start("denyreason", []map[string]any{
		fakemodel.WriteTurn(target, "must not be written\n"),
		fakemodel.TextTurn("Understood, I will not write it.", 0),
	}); err != nil {
		t.Fatal(err)
	}
	before := postIDs(s.threadPosts())
	mark := s.model.Mark()
	if _, err := s.command(owner, "/claude Create deny.txt"); err != nil {
		t.Fatal(err)
	}
	card := s.waitCard(t, before)
	dr := actionByID(card, "denyreason")
	if dr == nil {
		t.Fatal("the card has no denyreason action")
	}
	dialogs := len(s.api.Dialogs())
	trigger := s.api.NewTriggerID(owner)
	res, err := s.click(owner, card, copyContext(dr), trigger)
	if err != nil {
		t.Fatal(err)
	}
	if res.code != 200 || res.ephemeral() != "" || res.body["update"] != nil {
		t.Errorf("denyreason: status %d body %s, want 200 {}", res.code, res.raw)
	}
	var dlg model.OpenDialogRequest
	if !steps.Poll(10*time.Second, func() bool {
		if d := s.api.Dialogs(); len(d) > dialogs {
			dlg = d[len(d)-1]
			return true
		}
		return false
	}) {
		t.Fatal("denyreason opened no dialog (OpenInteractiveDialog)")
	}
	if dlg.TriggerId != trigger || dlg.URL != dialogURL {
		t.Errorf("dialog trigger_id %q URL %q, want %q %q", dlg.TriggerId, dlg.URL, trigger, dialogURL)
	}
	rec, err := s.serve("POST", "/api/v1/actions/approval/dialog", owner, model.SubmitDialogRequest{
		Type: "dialog_submission", CallbackId: dlg.Dialog.CallbackId, State: dlg.Dialog.State,
		UserId: owner, ChannelId: channelID, TeamId: teamID,
		Submission: map[string]any{"reason": "not in prod"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "errors") {
		t.Errorf("dialog submission: status %d body %s, want 200 {}", rec.Code, rec.Body)
	}
	s.waitRequest(t, mark, turnTimeout, "not in prod")
	s.waitDone(t, before, "the denied turn")
	if _, err := os.Stat(target); err == nil {
		t.Error("deny.txt was written although the request was denied")
	}
	if p, err := s.api.GetPost(card.Id); err == nil {
		if len(steps.Actions(p.GetProps())) != 0 || !strings.Contains(steps.Shown(p.Message, p.GetProps()), "Denied") {
			t.Errorf("card after the deny still has actions or does not say Denied: %q %v", p.Message, p.GetProps())
		}
	}
}

// 5: another channel's thread as context reaches the model before the next prompt.
func (s *scenario) stepContextThread(t *testing.T) {
	sentence := "The quokka ledger balances at 7341 marbles"
	secret := "The platypus vault code is 2209"
	root, _ := s.api.CreatePost(&model.Post{ChannelId: otherChan, UserId: member, Message: "Release planning"})
	if _, err := s.api.CreatePost(&model.Post{ChannelId: otherChan, UserId: owner, RootId: root.Id, Message: sentence}); err != nil {
		t.Fatal(err)
	}
	sroot, _ := s.api.CreatePost(&model.Post{ChannelId: secretChan, UserId: member, Message: secret})
	if err := s.model.Start("context", []map[string]any{fakemodel.TextTurn("I read the thread.", 0)}); err != nil {
		t.Fatal(err)
	}
	r, err := s.command(owner, "/claude context thread "+sroot.Id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.reply, "added as context") {
		t.Errorf("a thread of a channel the caller cannot read was added: %q", r.reply)
	}
	s.mustReply(t, owner, "/claude context thread "+root.Id, "added as context")
	before := postIDs(s.threadPosts())
	mark := s.model.Mark()
	if _, err := s.command(owner, "/claude Summarise the planning thread"); err != nil {
		t.Fatal(err)
	}
	s.waitRequest(t, mark, turnTimeout, sentence, "<mattermost-thread", "</mattermost-thread>", "Summarise the planning thread")
	s.waitDone(t, before, "the turn with thread context")
	for _, req := range s.model.Since(mark) {
		if strings.Contains(req.Text, secret) {
			t.Error("the unreadable channel's message reached the model")
		}
	}
}

// 6: project file access: legitimate paths work, 50+ hostile ones are refused.
func (s *scenario) stepFiles(t *testing.T) {
	s.mustReply(t, owner, "/claude files", "```", "README.md", "src")
	s.mustReply(t, owner, "/claude files src", "main.go")
	s.mustReply(t, owner, "/claude file README.md", "```", s.markers["readme"])
	s.mustReply(t, owner, "/claude file src/main.go", s.markers["main.go"])
	// The hostile corpus is spread over reader members (rate limit: 30 commands a minute each);
	// prove first that a reader is served at all, so refusals below are not vacuous.
	s.mustReply(t, readers[0], "/claude file README.md", s.markers["readme"])

	corpus := s.hostileCorpus(t)
	if len(corpus) < 50 {
		t.Fatalf("hostile corpus has %d paths, want >= 50", len(corpus))
	}
	hostname, _ := os.ReadFile("/etc/hostname")
	forbidden := []string{s.markers["sibling secret"], s.markers["outside secret"], s.markers["sibling listing"],
		s.markers["outside listing"], s.envMarker, harness.CookieValue, "root:x:0:0", "passwd", "hostname"}
	if h := strings.TrimSpace(string(hostname)); len(h) >= 6 {
		forbidden = append(forbidden, h)
	}
	next := 1
	run := func(text string) (string, error) {
		for range readers {
			user := readers[next%len(readers)]
			next++
			r, err := s.command(user, text)
			if err != nil {
				return "", err
			}
			if !strings.Contains(r.reply, "Slow down") {
				return r.reply, nil
			}
		}
		return "", fmt.Errorf("every reader was rate limited")
	}
	for _, p := range corpus {
		for _, sub := range []string{"file", "files"} {
			text := "/claude " + sub + " " + p
			reply, err := run(text)
			if err != nil {
				t.Errorf("%q: %v", text, err)
				continue
			}
			if strings.TrimSpace(reply) == "" {
				t.Errorf("%q: empty reply, want an error text", text)
			}
			if strings.Contains(reply, "```") {
				t.Errorf("%q: the reply has a code block (content or a tree): %q", text, reply)
			}
			for _, f := range forbidden {
				if f != "" && !strings.Contains(p, f) && strings.Contains(reply, f) {
					t.Errorf("%q: the reply leaks %q: %q", text, f, reply)
				}
			}
		}
	}
	// Unblock a reader the plugin may have left waiting on the FIFO.
	if f, err := os.OpenFile(filepath.Join(s.project, "fifo"), os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		f.Close()
	}
	// Still serving afterwards.
	s.mustReply(t, owner, "/claude file README.md", s.markers["readme"])
}

func (s *scenario) hostileCorpus(t *testing.T) []string {
	b, err := os.ReadFile("testdata/hostile_paths.txt")
	if err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer("<NUL>", "\x00", "<ROOT>", s.project, "<ROOTS>", s.roots, "<BASE>", s.base)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, r.Replace(line))
	}
	return out
}

// 7: a reply in the session thread is a prompt; the bot's own posts never are.
func (s *scenario) stepThreadReply(t *testing.T) {
	if err := s.model.Start("threadreply", []map[string]any{fakemodel.TextTurn("Noted: the zebra crossing.", 0)}); err != nil {
		t.Fatal(err)
	}
	before := postIDs(s.threadPosts())
	mark := s.model.Mark()
	s.posted(t, &model.Post{ChannelId: channelID, UserId: owner, RootId: s.rootPostID, Message: "Please also mention the zebra crossing"})
	s.waitRequest(t, mark, turnTimeout, "Please also mention the zebra crossing")
	done := s.waitDone(t, before, "the thread-reply turn")
	if done == nil {
		return
	}
	mark = s.model.Mark()
	before = postIDs(s.threadPosts())
	s.posted(t, &model.Post{ChannelId: channelID, UserId: s.botID, RootId: s.rootPostID, Message: "the bot talking LOOPCHECK-1"})
	fromBot := &model.Post{ChannelId: channelID, UserId: owner, RootId: s.rootPostID, Message: "relayed LOOPCHECK-2"}
	fromBot.AddProp("from_bot", "true")
	s.posted(t, fromBot)
	fromPlugin := &model.Post{ChannelId: channelID, UserId: owner, RootId: s.rootPostID, Message: "relayed LOOPCHECK-3"}
	fromPlugin.AddProp("from_plugin", "true")
	s.posted(t, fromPlugin)
	// An absence: wait long enough for a spurious turn to reach the model (the real CLI answers
	// a prompt in well under this when idle).
	time.Sleep(5 * time.Second)
	if n := len(s.model.Since(mark)); n != 0 {
		t.Errorf("the bot's own / from_bot / from_plugin posts caused %d model request(s)", n)
	}
	if extra := s.newBotPosts(before, false); len(extra) > 1 { // the bot post this step created itself
		t.Errorf("bot posts appeared after posts that must not prompt: %s", describePosts(extra))
	}
}

// posted stores a post in the fake server and fires MessageHasBeenPosted as the server does.
func (s *scenario) posted(t *testing.T, p *model.Post) {
	t.Helper()
	saved, err := harness.Posted(s.hooks, s.api, hookTimeout, p)
	if saved == nil {
		t.Fatal(err)
	} else if err != nil {
		t.Error(err)
	}
}

// 8: Deactivate + Activate; the session is back and the conversation resumes.
func (s *scenario) stepRestart(t *testing.T) {
	if !s.host.Env.Deactivate(harness.PluginID) {
		t.Fatal("Deactivate returned false")
	}
	s.activate(t)
	if err := s.model.Start("resume", []map[string]any{fakemodel.TextTurn("Yes, the zebra crossing.", 0)}); err != nil {
		t.Fatal(err)
	}
	var last string
	if !steps.Poll(30*time.Second, func() bool {
		r, err := s.command(owner, "/claude status")
		last = r.reply
		if err == nil && strings.Contains(r.reply, s.project) {
			return true
		}
		time.Sleep(2 * time.Second) // each try is a command: stay well inside the rate limit
		return false
	}) {
		t.Errorf("after the restart /claude status does not show the session's project path: %q", last)
	}
	before := postIDs(s.threadPosts())
	mark := s.model.Mark()
	if _, err := s.command(owner, "/claude What did I ask about RESUME-CHECK"); err != nil {
		t.Fatal(err)
	}
	// The resumed conversation carries the earlier turns (step 7's thread reply, step 2's prompt).
	s.waitRequest(t, mark, turnTimeout, "RESUME-CHECK", "Please also mention the zebra crossing", "PROMPT-HARBOUR")
	s.waitDone(t, before, "the resumed turn")
}

// 9: the plugin process is killed while a card waits; the server's health check restarts it
// (as Mattermost's health check job does). The card loses its buttons and says why, the CLI of
// the dead plugin goes away with it, and nothing was written.
func (s *scenario) stepCrash(t *testing.T) {
	card, target := s.pendingWrite(t, "crash.txt")
	pids := s.host.PluginPIDs()
	if len(pids) != 1 {
		t.Fatalf("plugin processes before the kill: %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !steps.Poll(10*time.Second, func() bool { return len(s.host.PluginPIDs()) == 0 }) {
		t.Fatal("the killed plugin process is still there")
	}
	if err := s.host.Env.PerformHealthCheck(harness.PluginID); err == nil {
		t.Error("the health check passed with the plugin process killed")
	}
	if err := s.host.Env.RestartPlugin(harness.PluginID); err != nil {
		t.Fatalf("RestartPlugin: %v", err)
	}
	var err error
	if s.hooks, err = s.host.Env.HooksForPlugin(harness.PluginID); err != nil {
		t.Fatal(err)
	}
	if !steps.Poll(15*time.Second, func() bool {
		p, err := s.api.GetPost(card.Id)
		return err == nil && len(steps.Actions(p.GetProps())) == 0 && strings.Contains(steps.Shown(p.Message, p.GetProps()), "Withdrawn")
	}) {
		p, _ := s.api.GetPost(card.Id)
		t.Errorf("after the restart the card still has buttons or does not say Withdrawn: %v", p)
	}
	// The dead plugin's CLI sees its stdin close and exits; only the new plugin may remain.
	if !steps.Poll(15*time.Second, func() bool { return len(s.relatedProcesses()) == 0 }) {
		t.Errorf("15 s after the crash the old session's processes still run: %v", s.relatedProcesses())
	}
	if _, err := os.Stat(target); err == nil {
		t.Error("crash.txt was written although nobody approved it")
	}
	r := s.mustReply(t, owner, "/claude status")
	if !strings.Contains(r.reply, s.project) {
		t.Errorf("/claude status after the crash does not show the session: %q", r.reply)
	}
}

// pendingWrite has Claude ask to write name in the project and returns the approval card,
// left pending, and the file's path.
func (s *scenario) pendingWrite(t *testing.T, name string) (*model.Post, string) {
	t.Helper()
	target := filepath.Join(s.project, name)
	if err := s.model.Start("pending-"+name, []map[string]any{fakemodel.WriteTurn(target, "never written\n")}); err != nil {
		t.Fatal(err)
	}
	before := postIDs(s.threadPosts())
	if _, err := s.command(owner, "/claude Create "+name); err != nil {
		t.Fatal(err)
	}
	return s.waitCard(t, before), target
}

// 10: a burst of 100 commands: the excess is told to slow down, the plugin keeps serving.
func (s *scenario) stepRateLimit(t *testing.T) {
	var slow, ok, errs atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				r, err := s.command(member, "/claude status")
				switch {
				case err != nil:
					errs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("worker %d: %v", w, err))
				case strings.Contains(r.reply, "Slow down"):
					slow.Add(1)
				default:
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("burst of 100 in %v: %d served, %d slowed down, %d errors", elapsed, ok.Load(), slow.Load(), errs.Load())
	if errs.Load() > 0 {
		t.Errorf("%d commands of the burst failed: %v", errs.Load(), firstErr.Load())
	}
	// 30 a minute, burst 30: at most 30 + one token per 2 s of the burst (+1 for rounding).
	if max := 30 + int64(elapsed/(2*time.Second)) + 1; ok.Load() > max {
		t.Errorf("%d of 100 burst commands were served, want <= %d", ok.Load(), max)
	}
	if slow.Load() == 0 {
		t.Fatal("no command of the burst got \"Slow down\"")
	}
	if len(s.host.PluginPIDs()) != 1 {
		t.Errorf("plugin processes after the burst: %v, want one", s.host.PluginPIDs())
	}
	if rec, err := s.serve("GET", "/api/v1/health", "", nil); err != nil || rec.Code != 200 {
		t.Errorf("health after the burst: %v %v", rec, err)
	}
	// Another user is served at once.
	if r, err := s.command(owner, "/claude status"); err != nil || strings.Contains(r.reply, "Slow down") || r.reply == "" {
		t.Errorf("another user after the burst: %q %v", r.reply, err)
	}
	// The limited user is served again once the bucket refills (one token per 2 s).
	var last string
	if !steps.Poll(20*time.Second, func() bool {
		r, err := s.command(member, "/claude status")
		last = r.reply
		if err == nil && r.reply != "" && !strings.Contains(r.reply, "Slow down") {
			return true
		}
		time.Sleep(time.Second)
		return false
	}) {
		t.Errorf("the burst's user is still refused 20 s later: %q", last)
	}
}

// 11: stop with a card waiting: the card is withdrawn, the CLI's process tree is gone.
func (s *scenario) stepStop(t *testing.T) {
	// A request still waiting on its card when the session stops: the card must not keep
	// buttons that can no longer do anything.
	card, never := s.pendingWrite(t, "never.txt")
	procs := s.relatedProcesses()
	if len(procs) == 0 {
		t.Logf("note: no CLI process of this session was found before the stop (the check below is then weak)")
	} else {
		t.Logf("session processes before the stop: %v", procs)
	}
	r := s.mustReply(t, owner, "/claude stop")
	if !strings.Contains(strings.ToLower(r.reply), "stopped") {
		t.Errorf("/claude stop reply %q lacks \"stopped\"", r.reply)
	}
	if !steps.Poll(15*time.Second, func() bool { return len(s.relatedProcesses()) == 0 }) {
		t.Errorf("15 s after /claude stop these processes of the session still run: %v", s.relatedProcesses())
	}
	r = s.mustReply(t, owner, "/claude status")
	if !containsAny(r.reply, "stopped", "No Claude Code session in this channel") {
		t.Errorf("/claude status after stop: %q", r.reply)
	}
	if !steps.Poll(10*time.Second, func() bool {
		p, err := s.api.GetPost(card.Id)
		return err == nil && len(steps.Actions(p.GetProps())) == 0 && strings.Contains(steps.Shown(p.Message, p.GetProps()), "Withdrawn")
	}) {
		p, _ := s.api.GetPost(card.Id)
		t.Errorf("the pending card still has buttons or does not say Withdrawn after the stop: %v", p)
	}
	if _, err := os.Stat(never); err == nil {
		t.Error("never.txt was written although nobody approved it")
	}
}

// 12: the server fails every CreatePost and UpdatePost for 60 s while a reply streams and a
// card is requested: within 10 s of its recovery every reply lands complete and the card is
// there (and works), and nothing was posted twice.
func (s *scenario) stepOutage(t *testing.T) {
	words := make([]string, 0, 40)
	for i := range 40 {
		words = append(words, fmt.Sprintf("squall%02d", i))
	}
	text := "The storm log: " + strings.Join(words, " ") + " end of log."
	outage := filepath.Join(s.project, "outage.txt")
	if err := s.model.Start("outage", []map[string]any{
		fakemodel.TextTurn(text, 80),
		fakemodel.WriteTurn(outage, "written after the outage\n"),
		fakemodel.TextTurn("I wrote outage.txt after the storm.", 0),
	}); err != nil {
		t.Fatal(err)
	}
	before := postIDs(s.threadPosts())
	const outageFor = 60 * time.Second
	recovered := s.api.FailFor(outageFor, "CreatePost", "UpdatePost")
	mark := s.model.Mark()
	if _, err := s.command(owner, "/claude Write the storm log PROMPT-STORM"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.command(owner, "/claude Then create outage.txt PROMPT-OUTAGE-FILE"); err != nil {
		t.Fatal(err)
	}
	// Both turns run while the server refuses every post.
	s.waitRequest(t, mark, turnTimeout, "PROMPT-OUTAGE-FILE")
	if time.Now().After(recovered) {
		t.Fatalf("the turns took longer than the %v outage; the step proves nothing", outageFor)
	}
	if got := s.newBotPosts(before, false); len(got) != 0 {
		t.Fatalf("posts were made during the outage: %s", describePosts(got))
	}
	if s.api.FaultedCalls("CreatePost") == 0 {
		t.Fatal("the plugin made no CreatePost call during the outage")
	}
	time.Sleep(time.Until(recovered))
	// Within 10 s of the recovery: the reply, complete and closed, and the card.
	var reply, card *model.Post
	landed := steps.Poll(10*time.Second, func() bool {
		reply, card = nil, nil
		for _, p := range s.newBotPosts(before, false) {
			if strings.Contains(p.Message, text) && steps.HasDoneLine(p.Message) {
				reply = p
			}
		}
		if cards := s.newBotPosts(before, true); len(cards) > 0 {
			card = cards[0]
		}
		return reply != nil && card != nil
	})
	t.Logf("%v after the recovery: reply %v, card %v; CreatePost failed %d times, UpdatePost %d times",
		time.Since(recovered).Round(100*time.Millisecond), reply != nil, card != nil,
		s.api.FaultedCalls("CreatePost"), s.api.FaultedCalls("UpdatePost"))
	if !landed {
		t.Fatalf("within 10 s of the recovery the complete reply (%v) or the card (%v) is missing; new bot posts: %s",
			reply != nil, card != nil, describePosts(s.newBotPosts(before, false)))
	}
	if reply.RootId != s.rootPostID || card.RootId != s.rootPostID {
		t.Errorf("the reply (%q) or the card (%q) is not in the session thread %q", reply.RootId, card.RootId, s.rootPostID)
	}
	checkCard(t, card, "Write", "outage.txt")
	approve := actionByID(card, "approve")
	if approve == nil {
		t.Fatal("the card has no approve action")
	}
	if res, err := s.click(owner, card, copyContext(approve), model.NewId()); err != nil || res.code != 200 {
		t.Fatalf("approving the card after the outage: %v %v", res, err)
	}
	if !steps.Poll(30*time.Second, func() bool {
		b, err := os.ReadFile(outage)
		return err == nil && string(b) == "written after the outage\n"
	}) {
		t.Errorf("outage.txt not written within 30 s of the approval")
	}
	var closing *model.Post
	if !steps.Poll(turnTimeout, func() bool {
		for _, p := range s.newBotPosts(before, false) {
			if strings.Contains(p.Message, "after the storm") && steps.HasDoneLine(p.Message) {
				closing = p
				return true
			}
		}
		return false
	}) {
		t.Errorf("the approved turn's reply did not land: %s", describePosts(s.newBotPosts(before, false)))
	} else if closing.RootId != s.rootPostID {
		t.Errorf("the approved turn's reply is not in the session thread: %q", closing.RootId)
	}
	// Nothing twice: one post per key the plugin gave it, and each text once.
	seen := map[string]string{}
	for _, p := range append(s.newBotPosts(before, false), s.newBotPosts(before, true)...) {
		key, _ := p.GetProp("claude_code_key").(string)
		if key == "" {
			t.Errorf("bot post %s carries no claude_code_key prop", p.Id)
			continue
		}
		if other, dup := seen[key]; dup {
			t.Errorf("posted twice: %s and %s (key %s)", other, p.Id, key)
		}
		seen[key] = p.Id
	}
	n := 0
	for _, p := range s.newBotPosts(before, false) {
		if strings.Contains(p.Message, "The storm log:") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the storm log is in %d posts, want 1: %s", n, describePosts(s.newBotPosts(before, false)))
	}
}
