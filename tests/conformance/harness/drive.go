package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// Driving a plugin's hooks as the server does, shared by the scenarios on the host code
// (chatscenario, cluster). Every call runs under a deadline: a hook must never hang a test.

// Within runs fn with a deadline (fn keeps running in the background if it passes).
func Within[T any](d time.Duration, what string, fn func() T) (T, error) {
	ch := make(chan T, 1)
	go func() { ch <- fn() }()
	select {
	case v := <-ch:
		return v, nil
	case <-time.After(d):
		var zero T
		return zero, fmt.Errorf("%s: no answer within %v", what, d)
	}
}

// CommandResult is what the user sees of a slash command.
type CommandResult struct {
	Resp  *model.CommandResponse
	Reply string // Resp.Text plus the ephemeral posts the user got during the call
}

// RunCommand calls ExecuteCommand as the server does for args (a RequestId in the context);
// api is the fake whose ephemeral posts to args.UserId are collected into the reply.
func RunCommand(hooks plugin.Hooks, api *FakeAPI, d time.Duration, args *model.CommandArgs) (CommandResult, error) {
	before := map[string]bool{}
	for _, p := range api.EphemeralPosts() {
		before[p.Id] = true
	}
	type out struct {
		r   *model.CommandResponse
		err *model.AppError
	}
	o, err := Within(d, fmt.Sprintf("ExecuteCommand %q as %s", args.Command, args.UserId), func() out {
		r, e := hooks.ExecuteCommand(&plugin.Context{RequestId: model.NewId()}, args)
		return out{r, e}
	})
	if err != nil {
		return CommandResult{}, err
	}
	if o.err != nil {
		return CommandResult{}, fmt.Errorf("ExecuteCommand %q: AppError %v", args.Command, o.err)
	}
	res := CommandResult{Resp: o.r}
	var parts []string
	if o.r != nil && o.r.Text != "" {
		parts = append(parts, o.r.Text)
	}
	for _, p := range api.EphemeralPosts() {
		if !before[p.Id] && p.GetProp("fake_target_user_id") == args.UserId {
			parts = append(parts, p.Message)
		}
	}
	res.Reply = strings.Join(parts, "\n")
	return res, nil
}

// ServeHTTP sends one request to the plugin's ServeHTTP (path without /plugins/<id>), as
// user (Mattermost-User-Id; none if ""), with body as JSON ([]byte as is, nil for none).
func ServeHTTP(hooks plugin.Hooks, d time.Duration, method, path, user string, body any) (*httptest.ResponseRecorder, error) {
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			return nil, err
		}
	}
	return Within(d, method+" "+path, func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.Header.Set("Mattermost-User-Id", user)
		}
		rec := httptest.NewRecorder()
		hooks.ServeHTTP(&plugin.Context{RequestId: model.NewId()}, rec, req)
		return rec
	})
}

// Posted stores a user's post in the fake and fires MessageHasBeenPosted with it, as the
// server does once a post is saved.
func Posted(hooks plugin.Hooks, api *FakeAPI, d time.Duration, p *model.Post) (*model.Post, error) {
	saved, appErr := api.CreatePost(p)
	if appErr != nil {
		return nil, appErr
	}
	_, err := Within(d, "MessageHasBeenPosted", func() bool {
		hooks.MessageHasBeenPosted(&plugin.Context{RequestId: model.NewId()}, saved)
		return true
	})
	return saved, err
}

// ClaudeCLI is the real Claude Code CLI the tests drive: $CLAUDE_CLI, else the pinned one
// under tools/ (make claude-cli), as an absolute path; the test fails without it.
func ClaudeCLI(t testing.TB) string {
	t.Helper()
	cli := os.Getenv("CLAUDE_CLI")
	if cli == "" {
		cli = filepath.Join(RepoRoot(), "tools/claude/node_modules/.bin/claude")
	}
	cli, err := filepath.Abs(cli)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("the Claude Code CLI is missing (make claude-cli, or set CLAUDE_CLI): %v", err)
	}
	return cli
}
