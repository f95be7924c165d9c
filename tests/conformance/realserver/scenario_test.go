package realserver

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

// The chat acceptance and the plugin's lifecycle on a real Mattermost server, driven through
// /api/v4 and the websocket as people and System Console drive it.

func TestMain(m *testing.M) {
	code := m.Run()
	fmt.Println(counter.Summary("e2e-server"))
	os.Exit(code)
}

func TestRealServer(t *testing.T) {
	w := newWorld(t)
	if !counter.Check(t, "install_enable_before_configuration", w.stepInstall) {
		t.Fatal("the plugin does not run on the server; nothing else can")
	}
	counter.Check(t, "autocomplete", w.stepAutocomplete)
	counter.Check(t, "invalid_setting_refused_at_save", w.stepInvalidSetting)
	counter.Check(t, "settings_apply_without_restart", w.stepSettingsApplyLive)
	counter.Check(t, "start", w.stepStart)
	if w.rootPostID == "" {
		t.Fatal("no session: the chat steps cannot run")
	}
	counter.Check(t, "streamed_reply", w.stepStreamedReply)
	counter.Check(t, "approval_card_clicks", w.stepApprovalClicks)
	counter.Check(t, "deny_with_reason_dialog", w.stepDenyDialog)
	counter.Check(t, "question_answered_by_click", w.stepQuestionClick)
	counter.Check(t, "card_mentions_the_approver_only", w.stepCardMentionsTheApprover)
	counter.Check(t, "thread_reply_prompt", w.stepThreadReply)
	counter.Check(t, "queued_prompts_visible_and_in_order", w.stepQueueVisible)
	counter.Check(t, "context_thread_permalinks", w.stepContextThread)
	counter.Check(t, "subcommands", w.stepSubcommands)
	counter.Check(t, "members_cannot_weaken_approval", w.stepMembersCannotWeakenApproval)
	counter.Check(t, "long_reply_split", w.stepLongReply)
	counter.Check(t, "large_write", w.stepLargeWrite)
	counter.Check(t, "image_and_files_into_a_prompt", w.stepImageIntoPrompt)
	counter.Check(t, "hostile_mentions_notify_no_one", w.stepHostileMentionsNotifyNoOne)
	counter.Check(t, "api_token_reads_and_refusals", w.stepAPIToken)
	counter.Check(t, "api_bad_input_changes_nothing", w.stepAPIBadInput)
	counter.Check(t, "api_cookie_auth_csrf", w.stepAPICookieCSRF)
	counter.Check(t, "api_live_events_turn_with_approval", w.stepLiveEventsApproval)
	counter.Check(t, "api_events_replay_after_reconnect", w.stepEventsReconnect)
	counter.Check(t, "api_file_edit_if_match", w.stepAPIFileEdit)
	counter.Check(t, "api_metrics", w.stepAPIMetrics)
	// After api_metrics, which counts what the steps before did; each run has its own channel,
	// project and session, stopped at its end.
	counter.Check(t, "webapp_browser_react18", w.stepBrowserReact18)
	counter.Check(t, "webapp_browser_react19", w.stepBrowserReact19)
	counter.Check(t, "direct_message_session", w.stepDirectMessage)
	counter.Check(t, "worktree_write_then_stop_clean", w.stepWorktree)
	counter.Check(t, "disable_enable_with_card_open", w.stepDisableEnable)
	counter.Check(t, "forced_upgrade_while_running", w.stepForcedUpgrade)
	counter.Check(t, "kill9_health_check_restart", w.stepKill9)
	counter.Check(t, "server_restart_with_card_open", w.stepServerRestart)
	counter.Check(t, "stop", w.stepStop)
	counter.Check(t, "plugin_log_readable_and_clean", w.stepLog)
}

// Upload and enable before any setting is saved, as an admin does in System Console.
func (w *world) stepInstall(t *testing.T) {
	w.expectLog("the tarball is not signed (RequirePluginSignature is off), as any plugin built from source",
		`No signature when persisting plugin to filestore`, time.Time{}, time.Time{})
	started := time.Now()
	m, err := Install(w.ctx, w.admin.client, w.tarball)
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitActive(w.ctx, w.admin.client, 60*time.Second); err != nil {
		t.Fatalf("plugin %s %s: %v\n%s", m.Id, m.Version, err, w.pluginLog(20))
	}
	t.Logf("plugin %s running %v after upload", m.Version, time.Since(started).Round(time.Millisecond))
	bot, _, err := w.admin.client.GetUserByUsername(w.ctx, "claude", "")
	if err != nil || !bot.IsBot {
		t.Fatalf("no bot user @claude after activation: %v %+v", err, bot)
	}
	w.botID = bot.Id
	// Not configured yet: every command still answers, and says what is missing.
	a := w.mustSay(t, w.owner, w.channel, "/claude start "+w.project)
	if !strings.Contains(a.text(), "allowed project root") {
		t.Errorf("start before configuration answered %q, want it to name the allowed project roots", a.text())
	}
}

// The autocomplete tree registered on the server serves suggestions.
func (w *world) stepAutocomplete(t *testing.T) {
	sugg, _, err := w.owner.client.ListCommandAutocompleteSuggestions(w.ctx, "/claude ", w.team.Id)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range sugg {
		names = append(names, s.Complete)
	}
	for _, want := range []string{"claude start", "claude stop", "claude status", "claude help", "claude mode"} {
		if !slices.Contains(names, want) {
			t.Errorf("suggestions for \"/claude \" lack %q: %v", want, names)
		}
	}
	sugg, _, err = w.owner.client.ListCommandAutocompleteSuggestions(w.ctx, "/claude mode ", w.team.Id)
	if err != nil {
		t.Fatal(err)
	}
	var modes []string
	for _, s := range sugg {
		modes = append(modes, s.Complete)
	}
	if !slices.ContainsFunc(modes, func(s string) bool { return strings.HasSuffix(s, "acceptEdits") }) {
		t.Errorf("suggestions for \"/claude mode \" lack acceptEdits: %v", modes)
	}
}

// An invalid setting is refused when the admin saves it, with the reason; nothing is stored.
func (w *world) stepInvalidSetting(t *testing.T) {
	from := time.Now()
	defer func() { w.expectLog("an invalid setting is saved", `MaxConcurrentSessions`, from, time.Now()) }()
	err := Configure(w.ctx, w.admin.client, w.settings(map[string]any{"MaxConcurrentSessions": 0}))
	if err == nil {
		t.Fatal("saving MaxConcurrentSessions=0 succeeded; want it refused at save time")
	}
	if !strings.Contains(err.Error(), "MaxConcurrentSessions") {
		t.Errorf("the refusal does not say which setting is wrong: %v", err)
	}
	cfg, _, gerr := w.admin.client.GetConfig(w.ctx)
	if gerr != nil {
		t.Fatal(gerr)
	}
	if got := cfg.PluginSettings.Plugins[PluginID]; got != nil && fmt.Sprint(got["maxconcurrentsessions"]) == "0" {
		t.Errorf("the refused setting was stored anyway: %v", got)
	}
}

// A setting saved while the plugin runs reaches the next session without disable/enable.
func (w *world) stepSettingsApplyLive(t *testing.T) {
	missing := filepath.Join(w.base, "no-such-claude")
	w.expectLog("the CLI path points at a file that does not exist", `no-such-claude`, time.Now(), time.Time{})
	if err := Configure(w.ctx, w.admin.client, w.settings(map[string]any{"ClaudeCliPath": missing})); err != nil {
		t.Fatal(err)
	}
	a := w.mustSay(t, w.owner, w.channel, "/claude start "+w.project)
	if !strings.Contains(a.text(), missing) {
		t.Errorf("start with a missing CLI answered %q, want it to name %s", a.text(), missing)
	}
	if err := Configure(w.ctx, w.admin.client, w.settings(nil)); err != nil {
		t.Fatal(err)
	}
	a = w.mustSay(t, w.owner, w.channel, "/claude status")
	if !strings.Contains(a.text(), "No Claude Code session") {
		t.Errorf("a start with a missing CLI left a session behind: %q", a.text())
	}
}

// Start: one clear answer, the thread root, the bot made a member of the channel.
func (w *world) stepStart(t *testing.T) {
	w.script(t, "start")
	mark := w.owner.mark()
	a := w.mustSay(t, w.owner, w.channel, "/claude start "+w.project)
	if strings.TrimSpace(a.text()) == "" {
		t.Errorf("a successful start answered with empty text")
	}
	if len(a.ephemerals) > 1 {
		t.Errorf("the answer reached the user %d times: %q", len(a.ephemerals), a.ephemerals)
	}
	ev := w.owner.waitEvent(mark, model.WebsocketEventPosted, postTimeout, func(ev *model.WebSocketEvent) bool {
		p := postOf(ev)
		return p != nil && p.UserId == w.botID && strings.Contains(p.Message, "Claude Code session started")
	})
	if ev == nil {
		t.Fatalf("no session root post within %v", postTimeout)
	}
	root := postOf(ev)
	if !strings.Contains(root.Message, w.project) || root.RootId != "" {
		t.Errorf("session root %+v: want a thread root naming %s", root, w.project)
	}
	w.rootPostID = root.Id
	if _, _, err := w.admin.client.GetChannelMember(w.ctx, w.channel.Id, w.botID, ""); err != nil {
		t.Errorf("the bot posts in the channel but is not a member of it: %v", err)
	}
	w.mustSay(t, w.owner, w.channel, "/claude status", w.project)
	w.mustSay(t, w.owner, w.channel, "/claude start "+w.project, "already has a session")
}

// A reply streams into one post: several post_edited events, then the closing line.
func (w *world) stepStreamedReply(t *testing.T) {
	words := make([]string, 0, 60)
	for i := range 60 {
		words = append(words, fmt.Sprintf("harbour%02d", i))
	}
	text := "The harbour report: " + strings.Join(words, " ") + " end of report."
	w.script(t, "stream", fakemodel.TextTurn(text, 80))
	before := postIDs(w.threadPosts(t))
	mark, wsMark := w.model.Mark(), w.member.mark()
	w.mustSay(t, w.owner, w.channel, "/claude Please write the harbour report PROMPT-HARBOUR")
	w.waitModelSaw(t, mark, turnTimeout, "PROMPT-HARBOUR")
	done := w.waitDone(t, before, "the streamed turn")
	if !strings.Contains(done.Message, text) {
		t.Errorf("the reply lacks the streamed text: %q", done.Message)
	}
	if done.RootId != w.rootPostID {
		t.Errorf("the reply is not in the session thread: root %q", done.RootId)
	}
	// The post read back can be ahead of the member's websocket: the last edit's event may
	// still be on its way.
	edits := 0
	steps.Poll(postTimeout, func() bool {
		edits = 0
		for _, ev := range w.member.eventsSince(wsMark, model.WebsocketEventPostEdited) {
			if p := postOf(ev); p != nil && p.Id == done.Id {
				edits++
			}
		}
		return edits >= 2
	})
	if edits < 2 {
		t.Errorf("a channel member saw %d post_edited events for the reply while ~5 s of text streamed, want >= 2", edits)
	}
	if others := w.newBotPosts(t, before, false); len(others) != 1 {
		t.Errorf("the turn made %d bot posts, want one: %s", len(others), describe(others))
	}
	// The webapp draws the post as the turn of the prompt that the live events named.
	var promptID string
	for _, ev := range w.member.eventsSince(wsMark, model.WebsocketEventType("custom_"+PluginID+"_prompt")) {
		if id, _ := ev.GetData()["prompt_id"].(string); id != "" {
			promptID = id
		}
	}
	turn, _ := done.GetProp("claude_code_turn").(string)
	session, _ := done.GetProp("claude_code_session").(string)
	if done.Type != "custom_claude_code" || promptID == "" || turn != promptID || session != w.session(t).ID {
		t.Errorf("turn post type %q, props turn %q session %q; want custom_claude_code naming prompt %q of session %s",
			done.Type, turn, session, promptID, w.session(t).ID)
	}
}

// Card clicks through POST /api/v4/posts/{id}/actions/{action}: the server refuses an outsider,
// the plugin refuses a member who may not approve, the owner's approval writes the file.
func (w *world) stepApprovalClicks(t *testing.T) {
	name := "hello-" + steps.RandHex(3) + ".txt"
	card, before := w.pendingWrite(t, name, "hello from the real server\n")
	if ids := actionIDs(card); !slices.Contains(ids, "approve") || !slices.Contains(ids, "denyreason") {
		t.Fatalf("card buttons %v", ids)
	}
	if !strings.Contains(shown(card), name) {
		t.Errorf("the card does not name the file: %q", shown(card))
	}
	if _, err := w.click(w.outsider, card, "approve"); err == nil {
		t.Errorf("a user outside the channel clicked Approve without an error from the server")
	}
	if _, err := w.click(w.member, card, "approve"); err != nil {
		t.Logf("member click: %v", err)
	}
	time.Sleep(time.Second)
	if _, err := os.Stat(filepath.Join(w.project, name)); err == nil {
		t.Fatalf("a click by a member who may not approve wrote the file")
	}
	if p, _, err := w.owner.client.GetPost(w.ctx, card.Id, ""); err != nil || !isCard(p) {
		t.Fatalf("a refused click closed the card: %v %s", err, describe([]*model.Post{p}))
	}
	if _, err := w.click(w.owner, card, "approve"); err != nil {
		t.Fatalf("owner's Approve: %v", err)
	}
	closed := w.waitClosed(t, card, postTimeout, "Approved", "@owner")
	// The click's update replaced the props: the card still names its request for the webapp.
	if request, _ := closed.GetProp("claude_code_request").(string); closed.Type != "custom_claude_code" || request == "" {
		t.Errorf("the decided card: type %q, claude_code_request %q", closed.Type, request)
	}
	w.waitDone(t, before, "the approved turn")
	if b, err := os.ReadFile(filepath.Join(w.project, name)); err != nil || string(b) != "hello from the real server\n" {
		t.Errorf("approved Write: file %q, %v", b, err)
	}
}

// "Deny with reason" opens a dialog over the websocket; its submission reaches the model.
func (w *world) stepDenyDialog(t *testing.T) {
	name := "denied-" + steps.RandHex(3) + ".txt"
	card, _ := w.pendingWrite(t, name, "never\n")
	wsMark, mark := w.owner.mark(), w.model.Mark()
	if _, err := w.click(w.owner, card, "denyreason"); err != nil {
		t.Fatalf("Deny with reason: %v", err)
	}
	ev := w.owner.waitEvent(wsMark, model.WebsocketEventOpenDialog, postTimeout, func(*model.WebSocketEvent) bool { return true })
	if ev == nil {
		t.Fatalf("no open_dialog event for the owner within %v", postTimeout)
	}
	raw, _ := ev.GetData()["dialog"].(string)
	var open model.OpenDialogRequest
	if err := json.Unmarshal([]byte(raw), &open); err != nil {
		t.Fatalf("open_dialog payload %q: %v", raw, err)
	}
	reason := "REASON-" + steps.RandHex(4) + " use the staging directory"
	resp, _, err := w.owner.client.SubmitInteractiveDialog(w.ctx, model.SubmitDialogRequest{
		URL: open.URL, CallbackId: open.Dialog.CallbackId, State: open.Dialog.State,
		ChannelId: w.channel.Id, TeamId: w.team.Id, Submission: map[string]any{"reason": reason},
	})
	if err != nil {
		t.Fatalf("dialog submit: %v", err)
	}
	if resp != nil && len(resp.Errors) > 0 {
		t.Fatalf("dialog refused: %v", resp.Errors)
	}
	w.waitClosed(t, card, postTimeout, "Denied")
	w.waitModelSaw(t, mark, turnTimeout, reason)
	if _, err := os.Stat(filepath.Join(w.project, name)); err == nil {
		t.Errorf("a denied Write wrote the file")
	}
}

// A member's reply in the session thread is a prompt, and the bot's answer notifies nobody in a
// channel it is not part of (no "Missing profile" on the server).
func (w *world) stepThreadReply(t *testing.T) {
	marker := "THREAD-" + steps.RandHex(4)
	w.script(t, "thread", fakemodel.TextTurn("Answer to the thread reply.", 0))
	before := postIDs(w.threadPosts(t))
	mark := w.model.Mark()
	if _, _, err := w.member.client.CreatePost(w.ctx, &model.Post{ChannelId: w.channel.Id, RootId: w.rootPostID, Message: "Please check " + marker}); err != nil {
		t.Fatal(err)
	}
	w.waitModelSaw(t, mark, turnTimeout, marker)
	w.waitDone(t, before, "the thread reply's turn")
	for _, e := range w.srv.Log() {
		if strings.Contains(e.Msg, "Missing profile") {
			t.Errorf("the server logged %q: the bot posts where it is not a member", e.Raw)
			break
		}
	}
}

// context thread: a permalink the caller can read becomes context; one into a private channel
// the caller is not in is refused and its text never reaches the model.
func (w *world) stepContextThread(t *testing.T) {
	public, secret := "CTX-PUBLIC-"+steps.RandHex(4), "CTX-SECRET-"+steps.RandHex(4)
	pp, _, err := w.owner.client.CreatePost(w.ctx, &model.Post{ChannelId: w.channel.Id, Message: "Design note " + public})
	if err != nil {
		t.Fatal(err)
	}
	sp, _, err := w.owner.client.CreatePost(w.ctx, &model.Post{ChannelId: w.secret.Id, Message: "Private " + secret})
	if err != nil {
		t.Fatal(err)
	}
	permalink := func(p *model.Post) string { return w.srv.URL + "/" + w.team.Name + "/pl/" + p.Id }
	a := w.command(w.member, w.channel, "/claude context thread "+permalink(sp))
	if strings.Contains(a.text(), secret) || !strings.Contains(strings.ToLower(a.text()), "cannot") && !strings.Contains(strings.ToLower(a.text()), "not") {
		t.Errorf("context from a channel the caller cannot read answered %q", a.text())
	}
	w.mustSay(t, w.owner, w.channel, "/claude context thread "+permalink(pp))
	w.script(t, "context", fakemodel.TextTurn("Read the context.", 0))
	before := postIDs(w.threadPosts(t))
	mark := w.model.Mark()
	w.mustSay(t, w.owner, w.channel, "/claude Summarise the design note")
	w.waitModelSaw(t, mark, turnTimeout, public)
	w.waitDone(t, before, "the context turn")
	if w.modelSaw(0, secret) {
		t.Errorf("text of a private channel the caller cannot read reached the model")
	}
}

// Issue 9: with approvals for the owner only, a member may neither change the permission mode
// (acceptEdits would let edits through without a card) nor the model, nor interrupt.
func (w *world) stepMembersCannotWeakenApproval(t *testing.T) {
	for _, line := range []string{"/claude mode acceptEdits", "/claude mode plan", "/claude model opus", "/claude interrupt"} {
		w.mustSay(t, w.member, w.channel, line, "Only the session's owner")
	}
}

// Every other subcommand answers as a person expects on the real server.
func (w *world) stepSubcommands(t *testing.T) {
	w.mustSay(t, w.member, w.channel, "/claude help", "/claude start", "/claude files")
	w.mustSay(t, w.member, w.channel, "/claude files", "README.md")
	w.mustSay(t, w.member, w.channel, "/claude file README.md", "# app")
	w.mustSay(t, w.member, w.channel, "/claude file ../../etc/passwd", "Paths must stay inside the project")
	w.mustSay(t, w.member, w.channel, "/claude history", "PROMPT-HARBOUR")
	w.mustSay(t, w.owner, w.channel, "/claude interrupt", "Nothing to interrupt")
	w.mustSay(t, w.owner, w.channel, "/claude model sonnet", "Model set to `sonnet`")
	w.mustSay(t, w.owner, w.channel, "/claude mode plan", "Permission mode set to `plan`")
	w.mustSay(t, w.owner, w.channel, "/claude mode default", "Permission mode set to `default`")
	// The server itself refuses a command in a channel the caller is not in.
	if a := w.command(w.outsider, w.channel, "/claude status"); a.err == nil && !strings.Contains(a.text(), "not a member") {
		t.Errorf("a user outside the channel ran /claude status there: %q", a.text())
	}
}

// A reply longer than a post continues in further posts, none over the server's limit.
func (w *world) stepLongReply(t *testing.T) {
	var sb strings.Builder
	for i := 0; sb.Len() < 40_000; i++ {
		fmt.Fprintf(&sb, "line %05d of the long reply\n", i)
	}
	text := sb.String()
	from := time.Now()
	defer func() {
		w.expectLog("40 000 characters streamed with no delay outrun the post stream's event buffer; "+
			"the issue \"Holds against hostile members…\" makes a lagging subscriber re-read the store",
			`the post stream lagged by \d+ events`, from, time.Now())
	}()
	w.script(t, "long", fakemodel.TextTurn(text, 0))
	before := postIDs(w.threadPosts(t))
	w.mustSay(t, w.owner, w.channel, "/claude Write a long reply")
	w.waitDone(t, before, "the long turn")
	var all strings.Builder
	for _, p := range w.newBotPosts(t, before, false) {
		if n := len([]rune(p.Message)); n > model.PostMessageMaxRunesV2 {
			t.Errorf("post %s has %d runes, over the server's %d", p.Id, n, model.PostMessageMaxRunesV2)
		}
		all.WriteString(p.Message)
	}
	for _, probe := range []string{"line 00000 of", "line 00700 of", strings.TrimSpace(text[len(text)-30:])} {
		if !strings.Contains(all.String(), probe) {
			t.Errorf("the long reply lost %q", probe)
		}
	}
}

// A large Write: the card fits the server's limits, and the approved file is complete.
func (w *world) stepLargeWrite(t *testing.T) {
	name := "big-" + steps.RandHex(3) + ".txt"
	content := strings.Repeat("0123456789abcdef large write line\n", 9000) // ~300 KB
	card, before := w.pendingWrite(t, name, content)
	if _, err := w.click(w.owner, card, "approve"); err != nil {
		t.Fatal(err)
	}
	w.waitClosed(t, card, postTimeout, "Approved")
	w.waitDone(t, before, "the large write")
	if b, err := os.ReadFile(filepath.Join(w.project, name)); err != nil || len(b) != len(content) {
		t.Errorf("large Write: %d bytes (%v), want %d", len(b), err, len(content))
	}
}

// Disable with a card open: the card is withdrawn, the deactivation logs no warning; enable:
// the session is there and answers.
func (w *world) stepDisableEnable(t *testing.T) {
	card, _ := w.pendingWrite(t, "during-disable.txt", "x\n")
	if _, err := w.admin.client.DisablePlugin(w.ctx, PluginID); err != nil {
		t.Fatal(err)
	}
	w.waitClosed(t, card, postTimeout, "Withdrawn")
	if _, err := w.admin.client.EnablePlugin(w.ctx, PluginID); err != nil {
		t.Fatal(err)
	}
	if err := WaitActive(w.ctx, w.admin.client, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	w.resumes(t, "after disable/enable")
}

// resumes prompts the session and checks the model sees the earlier conversation.
func (w *world) resumes(t *testing.T, when string) {
	t.Helper()
	w.script(t, "resume", fakemodel.TextTurn("Still here.", 0))
	before := postIDs(w.threadPosts(t))
	mark := w.model.Mark()
	w.mustSay(t, w.owner, w.channel, "/claude Are you still there?")
	w.waitModelSaw(t, mark, turnTimeout, "PROMPT-HARBOUR", "Are you still there?")
	w.waitDone(t, before, "the turn "+when)
}

// A new version uploaded with force while a session runs replaces the plugin; the session goes on.
func (w *world) stepForcedUpgrade(t *testing.T) {
	upgraded := filepath.Join(w.base, "claude-code-upgrade.tar.gz")
	version := repackWithVersion(t, w.tarball, upgraded, "-e2e.upgrade")
	if _, err := Install(w.ctx, w.admin.client, upgraded); err != nil {
		t.Fatal(err)
	}
	if err := WaitActive(w.ctx, w.admin.client, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	statuses, _, err := w.admin.client.GetPluginStatuses(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range statuses {
		if s.PluginId == PluginID && s.Version != version {
			t.Errorf("after the upgrade the server runs %s, want %s", s.Version, version)
		}
	}
	w.resumes(t, "after the upgrade")
}

// kill -9 of the plugin with an approved Bash command running and a card open: within 5 s, long
// before the server's health check restarts it, no process of the dead run works in the
// project any more; after the restart the card is closed and the session resumes.
func (w *world) stepKill9(t *testing.T) {
	w.approvedBackgroundSleep(t)
	card, before := w.pendingWrite(t, "during-kill.txt", "x\n")
	// The turn's reply post, still "Working…" while its card waits: the turn the kill cuts.
	var cut *model.Post
	if !steps.Poll(postTimeout, func() bool {
		for _, p := range w.newBotPosts(t, before, false) {
			if strings.Contains(p.Message, "Working…") {
				cut = p
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no working turn post before the kill: %s", describe(w.newBotPosts(t, before, false)))
	}
	old := w.srv.PluginProcesses()
	if len(old) == 0 {
		t.Fatal("no plugin process found")
	}
	cliBefore := w.projectProcesses()
	from := time.Now()
	defer func() {
		w.expectLog("the server notices the killed plugin process and restarts it",
			`RPC call \w+ to plugin failed|error closing client during Kill|plugin failed to exit gracefully|plugin process exited.*signal: killed|health check`,
			from, time.Now())
	}()
	for _, pid := range old {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	w.noProcessOutlivesThePlugin(t, old, cliBefore)
	// The health check runs every 30 s and restarts a plugin that does not answer its ping.
	if !steps.Poll(90*time.Second, func() bool {
		now := w.srv.PluginProcesses()
		return len(now) > 0 && !slices.Contains(old, now[0])
	}) {
		t.Fatalf("the plugin was not restarted within 90 s of kill -9")
	}
	if err := WaitActive(w.ctx, w.admin.client, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	w.waitClosed(t, card, postTimeout, "Withdrawn")
	// The cut turn's post is closed from the transcript at the restart, not left working.
	if !steps.Poll(postTimeout, func() bool {
		p, _, err := w.owner.client.GetPost(w.ctx, cut.Id, "")
		return err == nil && !strings.Contains(p.Message, "Working…")
	}) {
		p, _, _ := w.owner.client.GetPost(w.ctx, cut.Id, "")
		t.Errorf("the turn cut by the kill still shows \"Working…\" after the restart: %s", describe([]*model.Post{p}))
	}
	if !steps.Poll(10*time.Second, func() bool {
		for _, p := range w.projectProcesses() {
			if slices.Contains(cliBefore, p) {
				return false
			}
		}
		return true
	}) {
		t.Errorf("processes of the killed run are still alive: %v (before the kill: %v)", w.projectProcesses(), cliBefore)
	}
	w.resumes(t, "after kill -9")
}

// approvedBackgroundSleep has the model run `sleep 300` with Bash in the background, approved
// by the owner on its card, and waits until it runs in the project.
func (w *world) approvedBackgroundSleep(t *testing.T) {
	t.Helper()
	w.script(t, "background-sleep",
		map[string]any{"kind": "message", "blocks": []any{map[string]any{
			"type": "tool_use", "id": "toolu_scn_sleep_" + steps.RandHex(4), "name": "Bash",
			// A file is written first: the CLI runs a bare `sleep` without asking.
			"input": map[string]any{"command": "touch .kill9-marker && sleep 300", "description": "Sleep for a while",
				"run_in_background": true}}}},
		fakemodel.TextTurn("Sleeping in the background.", 0))
	before := postIDs(w.threadPosts(t))
	w.mustSay(t, w.owner, w.channel, "/claude Please sleep in the background")
	card := w.waitCard(t, before)
	if _, err := w.click(w.owner, card, "approve"); err != nil {
		t.Fatal(err)
	}
	w.waitClosed(t, card, postTimeout, "Approved")
	w.waitDone(t, before, "the background sleep")
	if !steps.Poll(10*time.Second, func() bool { return w.sleepRuns() }) {
		t.Fatalf("the approved `sleep 300` does not run in the project: %v", w.projectProcesses())
	}
}

// sleepRuns says whether a `sleep 300` works in the project.
func (w *world) sleepRuns() bool {
	for _, pid := range w.projectProcesses() {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmd), "sleep\x00300") {
			return true
		}
	}
	return false
}

// noProcessOutlivesThePlugin: within 5 s of the plugin's SIGKILL, and before the server
// restarts it, no process works in the project (the CLI, the command it runs, its supervisor).
func (w *world) noProcessOutlivesThePlugin(t *testing.T, plugin, before []int) {
	t.Helper()
	gone := steps.Poll(5*time.Second, func() bool { return len(w.projectProcesses()) == 0 })
	left := w.projectProcesses()
	now := w.srv.PluginProcesses()
	if len(now) > 0 && !slices.Contains(plugin, now[0]) {
		// Its recovery would kill leftovers, but it logs a warning for each, which the log step
		// does not accept: the processes ended with the plugin, not with the restart.
		t.Logf("the server restarted the plugin within 5 s of the kill (pid %d)", now[0])
	}
	if !gone {
		t.Errorf("5 s after kill -9 of the plugin, processes still work in the project: %v (before the kill: %v)", left, before)
	}
}

// Server stop and start with a card open: the card is closed, the session resumes.
func (w *world) stepServerRestart(t *testing.T) {
	card, _ := w.pendingWrite(t, "during-restart.txt", "x\n")
	from := time.Now()
	defer func() {
		w.expectLog("the server stops and starts with the plugin running",
			`RPC call \w+ to plugin failed|error closing client|plugin failed to exit gracefully`, from, time.Now())
	}()
	w.srv.Stop()
	if left := w.projectProcesses(); len(left) > 0 {
		t.Errorf("processes working in the project outlived the server: %v", left)
	}
	if err := w.srv.Start(w.ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*person{w.admin, w.owner, w.member, w.outsider} {
		if _, _, err := p.client.Login(w.ctx, p.name, password); err != nil {
			t.Fatal(err)
		}
	}
	if err := WaitActive(w.ctx, w.admin.client, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	w.waitClosed(t, card, postTimeout, "Withdrawn")
	w.resumes(t, "after a server restart")
}

func (w *world) stepStop(t *testing.T) {
	w.mustSay(t, w.owner, w.channel, "/claude stop")
	if !steps.Poll(10*time.Second, func() bool { return len(w.projectProcesses()) == 0 }) {
		t.Errorf("processes still work in the project after stop: %v", w.projectProcesses())
	}
}

// The plugin's lines in the server's log are readable, and none is a warning or an error
// except those the scenario provokes on purpose (expectLog, each with its reason).
func (w *world) stepLog(t *testing.T) {
	// go-plugin re-logs each of the plugin's stderr lines with its own `timestamp` field, which
	// the server's adapter puts in wrapped_extras; any other text there is a field of ours that
	// the server glued to its key unreadably.
	ownLine := regexp.MustCompile(`timestamp\d{4}-\d\d-\d\dT`)
	onlyTimestamp := regexp.MustCompile(`^timestamp\d{4}-\d\d-\d\dT[\d:.]+Z$`)
	own := 0
	for _, e := range w.pluginEntries() {
		extras, _ := e.Fields["wrapped_extras"].(string)
		if ownLine.MatchString(extras) {
			own++
			if !onlyTimestamp.MatchString(extras) {
				t.Errorf("a plugin line carries fields the server cannot separate: %s", e.Raw)
			}
		}
		if strings.Contains(e.Msg, "hooks stream ended with an error") {
			t.Errorf("a normal deactivation logged %q", e.Msg)
		}
		if e.Level != "warn" && e.Level != "error" {
			continue
		}
		if why := w.expectedLog(e); why != "" {
			t.Logf("expected %s (%s): %s", e.Level, why, e.Msg)
		} else {
			t.Errorf("unexpected %s from the plugin: %s", e.Level, e.Raw)
		}
	}
	if own == 0 {
		t.Fatal("no line of the plugin's own in the server's log")
	}
	t.Logf("%d of the plugin's own lines in the server's log", own)
}

// expectedLog is a warning or error the scenario provokes on purpose.
type expectedLog struct {
	why      string
	re       *regexp.Regexp
	from, to time.Time // zero: the whole run
}

// expectLog lists log lines matching pattern between from and to (zero to: until the end) as
// provoked on purpose, for why.
func (w *world) expectLog(why, pattern string, from, to time.Time) {
	w.expected = append(w.expected, expectedLog{why: why, re: regexp.MustCompile(pattern), from: from, to: to})
}

// expectedLog says why e was provoked on purpose, or "".
func (w *world) expectedLog(e LogEntry) string {
	ts, _ := e.Fields["timestamp"].(string)
	at, err := time.Parse("2006-01-02 15:04:05.000 Z", ts)
	for _, x := range w.expected {
		// The server's timestamps are cut to milliseconds and it logs a killed process within one:
		// a second of slack on each side.
		inWindow := err == nil && (x.from.IsZero() || !at.Before(x.from.Add(-time.Second))) &&
			(x.to.IsZero() || !at.After(x.to.Add(time.Second)))
		if x.re.MatchString(e.Raw) && (inWindow || x.from.IsZero()) {
			return x.why
		}
	}
	return ""
}

// pluginEntries are the server's log lines about this plugin.
func (w *world) pluginEntries() []LogEntry {
	var out []LogEntry
	for _, e := range w.srv.Log() {
		if id, _ := e.Fields["plugin_id"].(string); id == PluginID {
			out = append(out, e)
		}
	}
	return out
}

func (w *world) pluginLog(n int) string {
	es := w.pluginEntries()
	if len(es) > n {
		es = es[len(es)-n:]
	}
	var sb strings.Builder
	for _, e := range es {
		sb.WriteString(e.Raw + "\n")
	}
	return sb.String()
}

// projectProcesses are the live processes working inside the project (the CLI and what it runs).
func (w *world) projectProcesses() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err == nil && (cwd == w.project || strings.HasPrefix(cwd, w.project+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// repackWithVersion copies a plugin tarball with suffix appended to plugin.json's version.
func repackWithVersion(t *testing.T, src, dst, suffix string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	gz, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	gw := gzip.NewWriter(out)
	tw := tar.NewWriter(gw)
	tr := tar.NewReader(gz)
	re := regexp.MustCompile(`"version":\s*"([^"]*)"`)
	var version string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(h.Name, "/plugin.json") {
			body = re.ReplaceAllFunc(body, func(m []byte) []byte {
				version = string(re.FindSubmatch(m)[1]) + suffix
				return []byte(`"version": "` + version + `"`)
			})
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	if version == "" {
		t.Fatal("no version in plugin.json")
	}
	return version
}
