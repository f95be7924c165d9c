package realserver

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"claudecode/conformance/steps"
)

// Issue 10 on the real server: the plugin's REST API v1 called through the server with a
// person's token and with a browser's cookies, the answers of the authorization table, bad input
// that changes nothing, a file edited with If-Match. The live events are in events_test.go.

// api is p's REST client (the token the server gave at login).
func (w *world) api(p *person) *APIClient {
	return &APIClient{Site: w.srv.URL, Token: p.client.AuthToken}
}

// call sends one request and fails the step unless the status is want.
func (w *world) call(t *testing.T, c *APIClient, want int, method, path string, body any, headers ...string) APIResponse {
	t.Helper()
	resp, err := c.Do(w.ctx, method, path, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != want {
		t.Errorf("%s %s: %s, want status %d", method, path, resp, want)
	}
	return resp
}

// session is the channel's session as its owner reads it through GET /sessions/{id}; the id is
// found once through GET /sessions.
func (w *world) session(t *testing.T) Session {
	t.Helper()
	if w.sessionID == "" {
		var list struct {
			Sessions []Session `json:"sessions"`
		}
		resp := w.call(t, w.api(w.owner), http.StatusOK, "GET", "/sessions", nil)
		if err := resp.JSON(&list); err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Sessions {
			if s.ChannelID == w.channel.Id {
				w.sessionID = s.ID
			}
		}
		if w.sessionID == "" {
			t.Fatalf("GET /sessions as the owner lists no session in %s: %s", w.channel.Name, resp)
		}
	}
	var s Session
	resp := w.call(t, w.api(w.owner), http.StatusOK, "GET", "/sessions/"+w.sessionID, nil)
	if err := resp.JSON(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// settled is the session once the previous step's turn has ended on every side: the "✓ Done"
// post is edited by the post stream while the live task may still be storing the turn's last
// events and the engine may not yet report idle, so a baseline taken at once can move. It waits
// for idle and for last_seq to stay the same across two reads 300 ms apart.
func (w *world) settled(t *testing.T) Session {
	t.Helper()
	var s Session
	if !steps.Poll(turnTimeout, func() bool {
		first := w.session(t)
		time.Sleep(300 * time.Millisecond)
		s = w.session(t)
		return s.State == "idle" && s.PendingApprovals == 0 && s.LastSeq == first.LastSeq
	}) {
		t.Fatalf("the session did not settle (idle, no new event for 300 ms) within %v: %+v", turnTimeout, s)
	}
	return s
}

// GET /sessions and /sessions/{id} with each person's token: the owner and the member read the
// session, the outsider (not in the channel) neither sees it listed nor reads it; the
// authorization table's refusals on one read route and one write route.
func (w *world) stepAPIToken(t *testing.T) {
	s := w.settled(t)
	if s.OwnerID != w.owner.user.Id || s.ProjectPath != w.project || s.RootPostID != w.rootPostID {
		t.Errorf("session %+v: want owner %s, project %s, root post %s", s, w.owner.user.Id, w.project, w.rootPostID)
	}
	if s.State != "idle" || s.PendingApprovals != 0 || s.LastSeq <= 0 {
		t.Errorf("session %+v: want idle, no pending approval and live events already numbered (earlier turns)", s)
	}
	var list struct {
		Sessions []Session `json:"sessions"`
	}
	if err := w.call(t, w.api(w.outsider), http.StatusOK, "GET", "/sessions", nil).JSON(&list); err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Sessions {
		if o.ID == s.ID {
			t.Errorf("GET /sessions lists the session to a user outside its channel")
		}
	}
	w.call(t, w.api(w.member), http.StatusOK, "GET", "/sessions/"+s.ID, nil)
	// The session panel's view of the channel: the session, and each control's permission as
	// the table answers (the member may prompt, not change the mode); nothing to an outsider.
	type permission struct {
		Allowed bool    `json:"allowed"`
		Reason  *string `json:"reason"`
	}
	var view struct {
		Session     *Session              `json:"session"`
		Roots       []string              `json:"allowed_roots"`
		Permissions map[string]permission `json:"permissions"`
	}
	channel := "/channels/" + w.channel.Id
	if err := w.call(t, w.api(w.member), http.StatusOK, "GET", channel, nil).JSON(&view); err != nil {
		t.Fatal(err)
	}
	mode := view.Permissions["mode"]
	if view.Session == nil || view.Session.ID != s.ID || !view.Permissions["prompt"].Allowed || mode.Allowed ||
		mode.Reason == nil || !strings.Contains(strings.ToLower(*mode.Reason), "owner") || len(view.Permissions) != 13 {
		t.Errorf("the member's view of the channel: %+v", view)
	}
	if r := w.call(t, w.api(w.outsider), http.StatusNotFound, "GET", channel, nil); strings.Contains(string(r.Body), s.ID) {
		t.Errorf("the 404 to an outsider names the session: %s", r)
	}
	// Read route: no user, a user outside the channel (404: existence is not leaked), no such id.
	w.call(t, &APIClient{Site: w.srv.URL}, http.StatusUnauthorized, "GET", "/sessions/"+s.ID, nil)
	if r := w.call(t, w.api(w.outsider), http.StatusNotFound, "GET", "/sessions/"+s.ID, nil); strings.Contains(string(r.Body), w.project) {
		t.Errorf("the 404 to an outsider shows the project path: %s", r)
	}
	w.call(t, w.api(w.owner), http.StatusNotFound, "GET", "/sessions/"+strings.Repeat("z", 26), nil)
	// Write routes: the outsider cannot reach the session, the member may not change the mode.
	mark := w.model.Mark()
	w.call(t, w.api(w.outsider), http.StatusNotFound, "POST", "/sessions/"+s.ID+"/prompt", map[string]string{"text": "outsider prompt"})
	r := w.call(t, w.api(w.member), http.StatusForbidden, "PUT", "/sessions/"+s.ID+"/mode", map[string]string{"mode": "acceptEdits"})
	if !strings.Contains(strings.ToLower(r.ErrorText()), "owner") {
		t.Errorf("the 403 does not say who may change the mode: %q", r.ErrorText())
	}
	w.call(t, w.api(w.member), http.StatusForbidden, "PUT", "/sessions/"+s.ID+"/model", map[string]string{"model": "opus"})
	time.Sleep(500 * time.Millisecond)
	after := w.session(t)
	if after.PermissionMode != s.PermissionMode || after.LastSeq != s.LastSeq || len(w.model.Since(mark)) > 0 {
		t.Errorf("refused calls changed the session: %+v → %+v, %d model requests", s, after, len(w.model.Since(mark)))
	}
}

// Malformed JSON, unknown fields, an oversize body and paths out of the project are refused
// with their status, and nothing changes.
func (w *world) stepAPIBadInput(t *testing.T) {
	s := w.settled(t)
	w.script(t, "bad-input") // a prompt that got through would fail on an empty script
	mark := w.model.Mark()
	owner := w.api(w.owner)
	prompt := "/sessions/" + s.ID + "/prompt"
	w.call(t, owner, http.StatusBadRequest, "POST", prompt, `{"text": "unterminated`)
	w.call(t, owner, http.StatusBadRequest, "POST", prompt, `{"text": "hello", "priority": "high"}`)
	w.call(t, owner, http.StatusBadRequest, "PUT", "/sessions/"+s.ID+"/mode", map[string]string{"mode": "yolo"})
	big := fmt.Sprintf(`{"text": %q}`, strings.Repeat("x", 2<<20))
	w.call(t, owner, http.StatusRequestEntityTooLarge, "POST", prompt, big)

	// Paths out of the project: in a JSON field, through a symlink, and in the URL (which the
	// server's router cleans before the plugin sees it: it must not serve the file either).
	outside := filepath.Join(w.base, "outside-"+steps.RandHex(3))
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("OUTSIDE-SECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(w.project, "escape-"+steps.RandHex(3))
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(link)
	w.call(t, owner, http.StatusBadRequest, "POST", "/sessions/"+s.ID+"/context", map[string]string{"file": "../../../etc/passwd"})
	w.call(t, owner, http.StatusBadRequest, "POST", "/sessions/"+s.ID+"/context", map[string]string{"file": "/etc/passwd"})
	r := w.call(t, owner, http.StatusBadRequest, "GET", "/sessions/"+s.ID+"/files/"+filepath.Base(link)+"/secret.txt", nil)
	if strings.Contains(string(r.Body), "OUTSIDE-SECRET") {
		t.Errorf("a file behind a symlink out of the project was served")
	}
	w.call(t, owner, http.StatusBadRequest, "PUT", "/sessions/"+s.ID+"/files/"+filepath.Base(link)+"/planted.txt",
		map[string]string{"content": "planted\n"}, "If-Match", strings.Repeat("0", 64))
	w.call(t, owner, http.StatusBadRequest, "POST", "/sessions/"+s.ID+"/files/"+filepath.Base(link)+"/planted.txt",
		map[string]string{"content": "planted\n"})
	if _, err := os.Stat(filepath.Join(outside, "planted.txt")); err == nil {
		t.Errorf("a write through a symlink out of the project created a file outside it")
	}
	for _, p := range []string{"..%2F..%2F..%2F..%2Fetc%2Fpasswd", "%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd", "%2Fetc%2Fpasswd"} {
		r, err := owner.Do(w.ctx, "GET", "/sessions/"+s.ID+"/files/"+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("GET files/%s: %d", p, r.Status)
		if r.Status == http.StatusOK || strings.Contains(string(r.Body), "root:") {
			t.Errorf("GET files/%s: %s; want it refused", p, r)
		}
	}

	time.Sleep(500 * time.Millisecond)
	after := w.session(t)
	if after.LastSeq != s.LastSeq || after.PermissionMode != s.PermissionMode || after.State != "idle" || len(w.model.Since(mark)) > 0 {
		t.Errorf("refused input changed the session: %+v → %+v, %d model requests", s, after, len(w.model.Since(mark)))
	}
}

// Cookie authentication, as the web app calls the API: GETs pass on the cookie alone; a write
// needs the CSRF token. Without it the server drops the session (servePluginRequest passes no
// Mattermost-User-Id, so the plugin answers 401); with X-CSRF-Token = MMCSRF it is the user's.
func (w *world) stepAPICookieCSRF(t *testing.T) {
	s := w.session(t)
	browser, err := CookieLogin(w.ctx, w.srv.URL, w.owner.name, password)
	if err != nil {
		t.Fatal(err)
	}
	w.call(t, browser, http.StatusOK, "GET", "/sessions/"+s.ID, nil)
	mode := "/sessions/" + s.ID + "/mode"
	w.call(t, browser, http.StatusUnauthorized, "PUT", mode, map[string]string{"mode": "plan"})
	w.call(t, browser, http.StatusUnauthorized, "PUT", mode, map[string]string{"mode": "plan"}, "X-CSRF-Token", "not-the-token")
	if now := w.session(t); now.PermissionMode != s.PermissionMode {
		t.Fatalf("a cookie write without the CSRF token changed the mode to %s", now.PermissionMode)
	}
	// Without the token, X-Requested-With alone passes the server's check unless
	// ServiceSettings.ExperimentalStrictCSRFEnforcement is on (deprecated fallback, default off).
	// Browsers cannot send it cross-origin without CORS, so it is the server's rule, not ours: noted.
	r, err := browser.Do(w.ctx, "PUT", mode, map[string]string{"mode": s.PermissionMode}, "X-Requested-With", "XMLHttpRequest")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cookie write with X-Requested-With and no CSRF token (non-strict server): %d", r.Status)
	var got Session
	csrf := browser.Cookie("MMCSRF").Value
	if err := w.call(t, browser, http.StatusOK, "PUT", mode, map[string]string{"mode": "plan"},
		"X-CSRF-Token", csrf, "X-Requested-With", "XMLHttpRequest").JSON(&got); err != nil {
		t.Fatal(err)
	}
	if got.PermissionMode != "plan" || w.session(t).PermissionMode != "plan" {
		t.Errorf("the cookie write with the CSRF token answered mode %q; want plan", got.PermissionMode)
	}
	w.call(t, w.api(w.owner), http.StatusOK, "PUT", mode, map[string]string{"mode": s.PermissionMode})
}

// A person's own edit through the API: create, a conflicting create, read with sha256, update
// with If-Match, a stale If-Match refused with the first edit kept, approvers only; the channel
// is told and the live events say who changed the file.
func (w *world) stepAPIFileEdit(t *testing.T) {
	s := w.session(t)
	tap := w.tap(t, w.member)
	mark := tap.Mark()
	name := "api-edit-" + steps.RandHex(3) + ".txt"
	path, disk := "/sessions/"+s.ID+"/files/"+name, filepath.Join(w.project, name)
	before := postIDs(w.threadPosts(t))
	since := time.Now().UnixMilli() - 1000
	owner, member := w.api(w.owner), w.api(w.member)
	onDisk := func() string { b, _ := os.ReadFile(disk); return string(b) }
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	type written struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		Sha256 string `json:"sha256"`
	}

	w.call(t, member, http.StatusForbidden, "POST", path, map[string]string{"content": "member\n"})
	if _, err := os.Stat(disk); err == nil {
		t.Fatalf("a member who may not approve created %s", name)
	}
	var c written
	if err := w.call(t, owner, http.StatusCreated, "POST", path, map[string]string{"content": "one\n"}).JSON(&c); err != nil {
		t.Fatal(err)
	}
	if c.Sha256 != sum("one\n") || c.Size != 4 || onDisk() != "one\n" {
		t.Errorf("create answered %+v, disk %q", c, onDisk())
	}
	w.call(t, owner, http.StatusConflict, "POST", path, map[string]string{"content": "again\n"})
	w.call(t, owner, http.StatusConflict, "POST", "/sessions/"+s.ID+"/files/README.md", map[string]string{"content": "x\n"})
	var read struct {
		Path    string  `json:"path"`
		Size    int64   `json:"size"`
		Sha256  string  `json:"sha256"`
		Binary  bool    `json:"binary"`
		Content *string `json:"content"`
	}
	if err := w.call(t, member, http.StatusOK, "GET", path, nil).JSON(&read); err != nil {
		t.Fatal(err)
	}
	if read.Sha256 != sum("one\n") || read.Binary || read.Content == nil || *read.Content != "one\n" {
		t.Errorf("GET %s: %+v", name, read)
	}
	w.call(t, w.api(w.outsider), http.StatusNotFound, "GET", path, nil)
	w.call(t, owner, http.StatusPreconditionRequired, "PUT", path, map[string]string{"content": "no if-match\n"})
	var u written
	if err := w.call(t, owner, http.StatusOK, "PUT", path, map[string]string{"content": "two\n"}, "If-Match", read.Sha256).JSON(&u); err != nil {
		t.Fatal(err)
	}
	if u.Sha256 != sum("two\n") || onDisk() != "two\n" {
		t.Errorf("update answered %+v, disk %q", u, onDisk())
	}
	w.call(t, owner, http.StatusConflict, "PUT", path, map[string]string{"content": "three\n"}, "If-Match", read.Sha256)
	w.call(t, member, http.StatusForbidden, "PUT", path, map[string]string{"content": "member\n"}, "If-Match", u.Sha256)
	w.call(t, owner, http.StatusConflict, "DELETE", path, nil, "If-Match", read.Sha256)
	if got := onDisk(); got != "two\n" {
		t.Errorf("after a stale If-Match and a member's refused write the file holds %q, want the first edit %q", got, "two\n")
	}

	// The channel is told (in the session thread), and the live events carry who did it.
	var told []string
	if !steps.Poll(postTimeout, func() bool {
		told = nil
		for _, p := range w.newBotPosts(t, before, false) {
			if strings.Contains(p.Message, name) && p.CreateAt >= since {
				told = append(told, p.Message)
			}
		}
		return len(told) >= 1
	}) {
		t.Errorf("no bot post in the session thread names %s within %v: %s", name, postTimeout, describe(w.newBotPosts(t, before, false)))
	}
	t.Logf("announcements: %q", told)
	evs, ok := tap.Wait(postTimeout, mark, s.ID, func(evs []LiveEvent) bool {
		n := 0
		for _, e := range evs {
			if e.Name == "file_change" && strings.HasSuffix(e.Str("path"), name) {
				n++
			}
		}
		return n >= 2
	})
	if !ok {
		t.Errorf("want file_change events for the create and the update of %s; got %v", name, names(evs))
	}
	var actions []string
	for _, e := range evs {
		if e.Name == "file_change" && strings.HasSuffix(e.Str("path"), name) {
			actions = append(actions, e.Str("action"))
			if e.Str("by") != w.owner.user.Id {
				t.Errorf("file_change by %q, want the owner's id %s", e.Str("by"), w.owner.user.Id)
			}
		}
	}
	if !slices.Equal(actions, []string{"created", "updated"}) {
		t.Errorf("file_change actions %v, want [created updated] (refused writes are not events)", actions)
	}
}
