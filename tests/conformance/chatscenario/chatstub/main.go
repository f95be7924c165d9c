// Command chatstub is a small Go stand-in for the chat contract (/work/chat-contract.md) that
// exists only to validate the chat scenario itself before the Rust plugin implements it:
// CHATSCENARIO_STUB=1 (and no CLAUDE_CODE_TARBALL) makes ../ build and load it. It drives the
// real CLI the way the contract describes (stream-json, the stdio permission prompt tool,
// --resume after a restart) but is deliberately minimal: no interrupt/mode/model/history, no
// approval expiry, no 16383-character split, one session per channel.
package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

const (
	approvalPath = "/api/v1/actions/approval"
	dialogPath   = "/api/v1/actions/approval/dialog"
	urlPrefix    = "/plugins/claude-code"
)

type config struct {
	AllowedProjectRoots string
	ClaudeCliPath       string
	AnthropicApiKey     string
	AnthropicBaseUrl    string
	DataDirectory       string
	CommandsPerMinute   int
}

type pending struct {
	Tool  string
	Input json.RawMessage
	Card  string
}

type session struct {
	ID, Channel, Owner, Project, Root, CliSession string
	Started, Stopped                              bool

	mu        sync.Mutex
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	state     string
	context   []string
	reply     *model.Post
	text      strings.Builder
	lastEdit  time.Time
	approvals map[string]pending // request id
}

type stub struct {
	plugin.MattermostPlugin
	mu       sync.Mutex
	cfg      config
	botID    string
	key      []byte
	sessions map[string]*session // channel id
	buckets  map[string][2]float64
}

func (p *stub) OnActivate() error {
	if err := p.API.LoadPluginConfiguration(&p.cfg); err != nil {
		return err
	}
	if p.cfg.CommandsPerMinute == 0 {
		p.cfg.CommandsPerMinute = 30
	}
	id, err := p.API.EnsureBotUser(&model.Bot{Username: "claude", DisplayName: "Claude"})
	if err != nil {
		return err
	}
	p.botID = id
	ac := model.NewAutocompleteData("claude", "[command]", "Claude Code")
	ac.AddCommand(model.NewAutocompleteData("start", "<path>", "Start a session"))
	ac.AddCommand(model.NewAutocompleteData("help", "", "Help"))
	if err := p.API.RegisterCommand(&model.Command{Trigger: "claude", AutoComplete: true, AutocompleteData: ac}); err != nil {
		return err
	}
	p.key, _ = p.API.KVGet("hmac-key")
	if p.key == nil {
		p.key = make([]byte, 32)
		rand.Read(p.key)
		p.API.KVSet("hmac-key", p.key)
	}
	p.sessions = map[string]*session{}
	p.buckets = map[string][2]float64{}
	if b, _ := p.API.KVGet("sessions"); b != nil {
		var saved map[string]*session
		if json.Unmarshal(b, &saved) == nil {
			for k, s := range saved {
				s.state = "idle"
				if s.Stopped {
					s.state = "stopped"
				}
				s.approvals = map[string]pending{}
				p.sessions[k] = s
			}
		}
	}
	// Nothing is pending after a (re)start: cards still showing buttons are withdrawn.
	for _, s := range p.sessions {
		thread, appErr := p.API.GetPostThread(s.Root)
		if appErr != nil {
			continue
		}
		for _, post := range thread.Posts {
			atts, _ := post.GetProp("attachments").([]*model.SlackAttachment)
			if post.UserId == p.botID && len(atts) > 0 && len(atts[0].Actions) > 0 {
				post.SetProps(map[string]any{"attachments": []*model.SlackAttachment{{Text: "Withdrawn: the plugin restarted"}}})
				p.API.UpdatePost(post)
			}
		}
	}
	p.API.LogInfo("chatstub ready")
	return nil
}

func (p *stub) OnDeactivate() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sessions {
		s.kill()
	}
	return nil
}

func (p *stub) save() {
	b, _ := json.Marshal(p.sessions)
	p.API.KVSet("sessions", b)
}

func (s *session) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		s.cmd = nil
		s.stdin = nil
	}
}

func eph(text string) *model.CommandResponse {
	return &model.CommandResponse{ResponseType: model.CommandResponseTypeEphemeral, Text: text}
}

func (p *stub) allow(user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := float64(time.Now().UnixNano()) / 1e9
	capacity := float64(p.cfg.CommandsPerMinute)
	b, ok := p.buckets[user]
	if !ok {
		b = [2]float64{capacity, now}
	}
	tokens := min(capacity, b[0]+(now-b[1])*capacity/60)
	if tokens < 1 {
		p.buckets[user] = [2]float64{tokens, now}
		return false
	}
	p.buckets[user] = [2]float64{tokens - 1, now}
	return true
}

func (p *stub) ExecuteCommand(_ *plugin.Context, args *model.CommandArgs) (*model.CommandResponse, *model.AppError) {
	if _, err := p.API.GetChannelMember(args.ChannelId, args.UserId); err != nil {
		return eph("You are not a member of this channel."), nil
	}
	if !p.allow(args.UserId) {
		return eph("You are sending commands too quickly. Slow down."), nil
	}
	rest := strings.TrimPrefix(strings.TrimLeft(args.Command, " "), "/claude")
	rest = strings.TrimLeft(rest, " ")
	sub, arg, _ := strings.Cut(rest, " ")
	p.mu.Lock()
	s := p.sessions[args.ChannelId]
	p.mu.Unlock()
	live := s != nil && !s.Stopped
	switch sub {
	case "help", "":
		return eph("/claude start <path>, /claude status, /claude stop, /claude <prompt>"), nil
	case "start":
		return p.start(args, arg, live), nil
	case "status":
		if s == nil {
			return eph("No Claude Code session in this channel."), nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return eph(fmt.Sprintf("Session in %s: %s", s.Project, s.state)), nil
	case "stop":
		if !live {
			return eph("No Claude Code session in this channel."), nil
		}
		s.kill()
		s.mu.Lock()
		s.Stopped, s.state = true, "stopped"
		withdrawn := s.approvals
		s.approvals = map[string]pending{}
		s.mu.Unlock()
		for _, pend := range withdrawn {
			if card, err := p.API.GetPost(pend.Card); err == nil {
				card.SetProps(map[string]any{"attachments": []*model.SlackAttachment{{Text: "Withdrawn: the session stopped"}}})
				p.API.UpdatePost(card)
			}
		}
		p.mu.Lock()
		p.save()
		p.mu.Unlock()
		return eph("Session stopped."), nil
	case "context":
		if !live {
			return eph("No Claude Code session in this channel."), nil
		}
		kind, id, _ := strings.Cut(arg, " ")
		if kind != "thread" {
			return eph("usage: /claude context thread <post id>"), nil
		}
		return eph(p.contextThread(s, args.UserId, strings.TrimSpace(id))), nil
	case "files", "file":
		if !live {
			return eph("No Claude Code session in this channel."), nil
		}
		return eph(files(s.Project, sub == "files", arg)), nil
	case "ask":
		rest = arg
	}
	if !live {
		return eph("No Claude Code session in this channel."), nil
	}
	if err := p.prompt(s, rest); err != nil {
		return eph("error: " + err.Error()), nil
	}
	return &model.CommandResponse{}, nil
}

func (p *stub) roots() []string {
	var out []string
	for _, r := range strings.FieldsFunc(p.cfg.AllowedProjectRoots, func(c rune) bool { return c == ',' || c == '\n' }) {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, filepath.Clean(r))
		}
	}
	return out
}

func under(path, root string) bool { return path == root || strings.HasPrefix(path, root+"/") }

func (p *stub) start(args *model.CommandArgs, arg string, live bool) *model.CommandResponse {
	path := filepath.Clean(strings.TrimSpace(arg))
	ok := false
	for _, r := range p.roots() {
		ok = ok || under(path, r)
	}
	if !filepath.IsAbs(path) || !ok {
		return eph(fmt.Sprintf("%s is not under an allowed project root.", path))
	}
	st, err := os.Stat(path)
	if err != nil {
		return eph(fmt.Sprintf("%s does not exist.", path))
	}
	if !st.IsDir() {
		return eph(fmt.Sprintf("%s is not a directory.", path))
	}
	if live {
		return eph("This channel already has a session.")
	}
	root, appErr := p.API.CreatePost(&model.Post{UserId: p.botID, ChannelId: args.ChannelId,
		Message: fmt.Sprintf("Claude Code session started in `%s`", path)})
	if appErr != nil {
		return eph(appErr.Error())
	}
	s := &session{ID: model.NewId(), Channel: args.ChannelId, Owner: args.UserId, Project: path, Root: root.Id,
		CliSession: newUUID(), state: "idle", approvals: map[string]pending{}}
	p.mu.Lock()
	p.sessions[args.ChannelId] = s
	p.save()
	p.mu.Unlock()
	return eph("")
}

func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (p *stub) contextThread(s *session, user, id string) string {
	list, appErr := p.API.GetPostThread(id)
	if appErr != nil {
		return "That thread cannot be found."
	}
	var posts []*model.Post
	for _, q := range list.Posts {
		posts = append(posts, q)
	}
	if len(posts) == 0 || !p.API.HasPermissionToChannel(user, posts[0].ChannelId, model.PermissionReadChannel) {
		return "You cannot read that thread."
	}
	sort.Slice(posts, func(i, j int) bool { return posts[i].CreateAt < posts[j].CreateAt })
	var sb strings.Builder
	sb.WriteString("<mattermost-thread>\n")
	for _, q := range posts {
		sb.WriteString(q.Message + "\n")
	}
	sb.WriteString("</mattermost-thread>")
	s.mu.Lock()
	s.context = append(s.context, sb.String())
	s.mu.Unlock()
	return "The thread was added as context for the next prompt."
}

// files resolves a user path inside the project (never outside, regular files only).
func files(project string, list bool, arg string) string {
	arg = strings.TrimSpace(arg)
	if strings.ContainsRune(arg, 0) || filepath.IsAbs(arg) {
		return "That path is not allowed."
	}
	clean := filepath.Clean(arg)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "That path is outside the project."
	}
	root, err := filepath.EvalSymlinks(project)
	if err != nil {
		return "The project is gone."
	}
	resolved, err := filepath.EvalSymlinks(filepath.Join(root, clean))
	if err != nil {
		return "No such file in the project."
	}
	if !under(resolved, root) {
		return "That path is outside the project."
	}
	st, err := os.Stat(resolved)
	if err != nil {
		return "No such file in the project."
	}
	if list {
		if !st.IsDir() {
			return "Not a directory."
		}
		entries, err := os.ReadDir(resolved)
		if err != nil {
			return "Cannot list it."
		}
		var sb strings.Builder
		sb.WriteString("```\n")
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() {
				name += "/"
			}
			sb.WriteString(name + "\n")
		}
		sb.WriteString("```")
		return sb.String()
	}
	if !st.Mode().IsRegular() {
		return "Not a regular file."
	}
	b, err := os.ReadFile(resolved)
	if err != nil {
		return "Cannot read it."
	}
	return "```\n" + string(b) + "\n```"
}

func (p *stub) prompt(s *session, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		if err := p.spawn(s); err != nil {
			return err
		}
	}
	if len(s.context) > 0 {
		text = strings.Join(s.context, "\n") + "\n\n" + text
		s.context = nil
	}
	s.state = "running"
	msg, _ := json.Marshal(map[string]any{"type": "user", "message": map[string]any{"role": "user", "content": text}})
	_, err := s.stdin.Write(append(msg, '\n'))
	return err
}

func (p *stub) spawn(s *session) error {
	args := []string{"-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose",
		"--permission-prompt-tool", "stdio", "--include-partial-messages", "--setting-sources", "user"}
	if s.Started {
		args = append(args, "--resume", s.CliSession)
	} else {
		args = append(args, "--session-id", s.CliSession)
	}
	home := filepath.Join(p.cfg.DataDirectory, "home")
	os.MkdirAll(home, 0o755)
	cmd := exec.Command(p.cfg.ClaudeCliPath, args...)
	cmd.Dir = s.Project
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "ANTHROPIC_API_KEY=" + p.cfg.AnthropicApiKey,
		"ANTHROPIC_BASE_URL=" + p.cfg.AnthropicBaseUrl, "DISABLE_TELEMETRY=1", "DISABLE_AUTOUPDATER=1",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.stdin = cmd, stdin
	if !s.Started {
		s.Started = true
		p.mu.Lock()
		p.save()
		p.mu.Unlock()
	}
	go p.read(s, cmd, stdout)
	return nil
}

func (p *stub) read(s *session, cmd *exec.Cmd, stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var m struct {
			Type      string          `json:"type"`
			RequestID string          `json:"request_id"`
			Event     json.RawMessage `json:"event"`
			Request   struct {
				Subtype  string          `json:"subtype"`
				ToolName string          `json:"tool_name"`
				Input    json.RawMessage `json:"input"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m.Type != "stream_event" {
			p.API.LogDebug("cli line", "line", string(sc.Bytes()[:min(len(sc.Bytes()), 300)]))
		}
		switch m.Type {
		case "stream_event":
			var ev struct {
				Type  string `json:"type"`
				Delta struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"delta"`
			}
			if json.Unmarshal(m.Event, &ev) == nil && ev.Delta.Type == "text_delta" {
				p.appendText(s, ev.Delta.Text)
			}
		case "control_request":
			if m.Request.Subtype == "can_use_tool" {
				p.card(s, m.RequestID, m.Request.ToolName, m.Request.Input)
			}
		case "result":
			p.finish(s)
		}
	}
	cmd.Wait()
}

func (p *stub) appendText(s *session, t string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.text.WriteString(t)
	if s.reply == nil {
		r, err := p.API.CreatePost(&model.Post{UserId: p.botID, ChannelId: s.Channel, RootId: s.Root, Message: s.text.String()})
		if err == nil {
			s.reply, s.lastEdit = r, time.Now()
		}
		return
	}
	if time.Since(s.lastEdit) >= time.Second {
		s.reply.Message = s.text.String()
		p.API.UpdatePost(s.reply)
		s.lastEdit = time.Now()
	}
}

func (p *stub) finish(s *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := s.text.String() + "\n\n✓ Done"
	if s.reply == nil {
		p.API.CreatePost(&model.Post{UserId: p.botID, ChannelId: s.Channel, RootId: s.Root, Message: msg})
	} else {
		s.reply.Message = msg
		p.API.UpdatePost(s.reply)
	}
	s.reply = nil
	s.text.Reset()
	s.state = "idle"
}

func (p *stub) sign(ctx map[string]any) string {
	mac := hmac.New(sha256.New, p.key)
	fmt.Fprintf(mac, "%v|%v|%v|%v", ctx["session_id"], ctx["request_id"], ctx["action"], ctx["expires_at"])
	return hex.EncodeToString(mac.Sum(nil))
}

func (p *stub) card(s *session, requestID, tool string, input json.RawMessage) {
	var in map[string]any
	json.Unmarshal(input, &in)
	expires := fmt.Sprint(time.Now().Add(time.Hour).Unix())
	var actions []*model.PostAction
	for _, id := range []string{"approve", "approvesession", "deny", "denyreason"} {
		ctx := map[string]any{"session_id": s.ID, "request_id": requestID, "action": id, "expires_at": expires}
		ctx["sig"] = p.sign(ctx)
		actions = append(actions, &model.PostAction{Id: id, Name: id, Type: model.PostActionTypeButton,
			Integration: &model.PostActionIntegration{URL: urlPrefix + approvalPath, Context: ctx}})
	}
	post := &model.Post{UserId: p.botID, ChannelId: s.Channel, RootId: s.Root,
		Message: fmt.Sprintf("Claude wants to use **%s** on `%v`", tool, in["file_path"])}
	post.AddProp("attachments", []*model.SlackAttachment{{Text: "Allow?", Actions: actions}})
	created, err := p.API.CreatePost(post)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.approvals[requestID] = pending{Tool: tool, Input: input, Card: created.Id}
	s.state = "awaiting approval"
	s.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (p *stub) ServeHTTP(_ *plugin.Context, w http.ResponseWriter, r *http.Request) {
	user := r.Header.Get("Mattermost-User-Id")
	if r.URL.Path == "/api/v1/health" {
		w.Write([]byte("ok"))
		return
	}
	if user == "" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	switch r.URL.Path {
	case approvalPath:
		var req model.PostActionIntegrationRequest
		json.NewDecoder(r.Body).Decode(&req)
		writeJSON(w, p.click(user, req.TriggerId, req.Context))
	case dialogPath:
		var req model.SubmitDialogRequest
		json.NewDecoder(r.Body).Decode(&req)
		var ctx map[string]any
		json.Unmarshal([]byte(req.State), &ctx)
		s, pend, msg := p.verify(user, ctx)
		if msg != "" {
			writeJSON(w, map[string]any{"errors": map[string]string{"reason": msg}})
			return
		}
		reason := fmt.Sprint(req.Submission["reason"])
		p.answer(s, fmt.Sprint(ctx["request_id"]), pend, user, false, reason)
		writeJSON(w, map[string]any{})
	default:
		http.NotFound(w, r)
	}
}

func (p *stub) verify(user string, ctx map[string]any) (*session, pending, string) {
	sig, _ := ctx["sig"].(string)
	if !hmac.Equal([]byte(sig), []byte(p.sign(ctx))) {
		return nil, pending{}, "This action is not valid."
	}
	p.mu.Lock()
	var s *session
	for _, c := range p.sessions {
		if c.ID == ctx["session_id"] {
			s = c
		}
	}
	p.mu.Unlock()
	if s == nil {
		return nil, pending{}, "No such session."
	}
	if _, err := p.API.GetChannelMember(s.Channel, user); err != nil || user != s.Owner {
		return nil, pending{}, "Only the session owner can answer."
	}
	s.mu.Lock()
	pend, ok := s.approvals[fmt.Sprint(ctx["request_id"])]
	s.mu.Unlock()
	if !ok {
		return nil, pending{}, "This request was already answered."
	}
	return s, pend, ""
}

func (p *stub) click(user, trigger string, ctx map[string]any) any {
	s, pend, msg := p.verify(user, ctx)
	if msg != "" {
		return map[string]any{"ephemeral_text": msg}
	}
	requestID := fmt.Sprint(ctx["request_id"])
	switch ctx["action"] {
	case "denyreason":
		state, _ := json.Marshal(ctx)
		p.API.OpenInteractiveDialog(model.OpenDialogRequest{TriggerId: trigger, URL: urlPrefix + dialogPath,
			Dialog: model.Dialog{CallbackId: "deny", Title: "Deny", State: string(state),
				Elements: []model.DialogElement{{DisplayName: "Reason", Name: "reason", Type: "textarea"}}}})
		return map[string]any{}
	case "deny":
		return p.answer(s, requestID, pend, user, false, "Denied from Mattermost")
	default:
		return p.answer(s, requestID, pend, user, true, "")
	}
}

func (p *stub) answer(s *session, requestID string, pend pending, user string, allow bool, reason string) any {
	s.mu.Lock()
	delete(s.approvals, requestID)
	var resp map[string]any
	if allow {
		resp = map[string]any{"behavior": "allow", "updatedInput": pend.Input}
	} else {
		resp = map[string]any{"behavior": "deny", "message": reason}
	}
	line, _ := json.Marshal(map[string]any{"type": "control_response", "response": map[string]any{
		"subtype": "success", "request_id": requestID, "response": resp}})
	if s.stdin != nil {
		s.stdin.Write(append(line, '\n'))
	}
	p.API.LogDebug("answered", "line", string(line))
	s.state = "running"
	s.mu.Unlock()
	name := user
	if u, err := p.API.GetUser(user); err == nil {
		name = u.Username
	}
	verdict := "✅ Approved by @" + name
	if !allow {
		verdict = "⛔ Denied by @" + name + ": " + reason
	}
	card, err := p.API.GetPost(pend.Card)
	if err != nil {
		return map[string]any{"ephemeral_text": "card gone"}
	}
	props := map[string]any{"attachments": []*model.SlackAttachment{{Text: verdict}}}
	card.SetProps(props)
	p.API.UpdatePost(card)
	return map[string]any{"update": map[string]any{"message": card.Message, "props": props}}
}

func (p *stub) MessageHasBeenPosted(_ *plugin.Context, post *model.Post) {
	if post.UserId == p.botID || post.GetProp("from_bot") == "true" || post.GetProp("from_plugin") == "true" || post.RootId == "" {
		return
	}
	p.mu.Lock()
	var s *session
	for _, c := range p.sessions {
		if c.Root == post.RootId && !c.Stopped {
			s = c
		}
	}
	p.mu.Unlock()
	if s != nil {
		p.prompt(s, post.Message)
	}
}

func main() { plugin.ClientMain(&stub{}) }
