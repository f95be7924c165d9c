package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/harness"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

// A session started through node A is served by A's CLI whatever node a request lands on: a
// /claude prompt and a thread reply through B, a card click through C; REST reads through B
// answer what A answers.
func TestClusterForwarding(t *testing.T) {
	w := newWorld(t, 3, false)
	w.activate(t)
	s := w.start(t, "node-a", "fwd")
	watch := w.c.WatchCLIs(50*time.Millisecond, func(p harness.CLIProc) bool { return p.Cwd == s.project })
	defer func() {
		res := watch.Stop()
		if res.Most > 1 {
			t.Errorf("at some moment %d CLIs served the session: %v", res.Most, res.Over)
		}
		if len(res.Nodes) != 1 || res.Nodes[0] != "node-a" {
			t.Errorf("the session's CLI ran under %v, want only node-a (where it started)", res.Nodes)
		}
	}()
	if l, ok := w.lease(s); !ok || l.Node != "node-a" {
		t.Errorf("lease_%s in KV is %+v (present %v), want held by node-a: the session's owner is the node that started it", s.id, l, ok)
	}

	// A /claude prompt through B.
	if err := w.model.Start("via-b", []map[string]any{fakemodel.TextTurn("Answered for node B.", 0)}); err != nil {
		t.Fatal(err)
	}
	before := w.postIDs(s)
	mark := w.model.Mark()
	r, err := w.command(t, "node-b", s, "/claude Tell me about PROMPT-VIA-B")
	if err != nil {
		t.Fatal(err)
	}
	if refusal(r.Reply) {
		t.Errorf("/claude <prompt> through node-b was refused: %q", r.Reply)
	}
	if !steps.Poll(patience(r.Reply), func() bool { return w.requestWith(mark, "PROMPT-VIA-B") != nil }) {
		t.Errorf("the prompt sent through node-b never reached the model (reply %q)", r.Reply)
	}
	w.waitDone(t, s, before, patience(r.Reply), "the prompt through node-b")
	w.servedOnlyBy(t, s, "node-a")

	// A thread reply delivered to B's MessageHasBeenPosted.
	if err := w.model.Start("reply-b", []map[string]any{fakemodel.TextTurn("Thread reply answered.", 0)}); err != nil {
		t.Fatal(err)
	}
	before = w.postIDs(s)
	mark = w.model.Mark()
	w.threadReply(t, "node-b", s, "And what about THREAD-VIA-B")
	if !steps.Poll(turnTimeout, func() bool { return w.requestWith(mark, "THREAD-VIA-B") != nil }) {
		t.Errorf("the thread reply posted on node-b never reached the model")
	}
	w.waitDone(t, s, before, turnTimeout, "the thread reply through node-b")

	// A card clicked through C.
	target := filepath.Join(s.project, "via-c.txt")
	if err := w.model.Start("card-c", []map[string]any{
		fakemodel.WriteTurn(target, "approved through node C\n"),
		fakemodel.TextTurn("I wrote via-c.txt.", 0),
	}); err != nil {
		t.Fatal(err)
	}
	before = w.postIDs(s)
	r, err = w.command(t, "node-b", s, "/claude Create via-c.txt")
	if err != nil {
		t.Fatal(err)
	}
	card := w.waitCard(t, s, before, patience(r.Reply))
	var approve *model.PostAction
	for _, a := range steps.Actions(card.GetProps()) {
		if a.Id == "approve" {
			approve = a
		}
	}
	if approve == nil || approve.Integration == nil {
		t.Fatalf("the card has no approve action: %v", card.GetProps())
	}
	code, body := w.click(t, "node-c", card, approve)
	if code != 200 || !strings.Contains(body, "Approved") {
		t.Errorf("approve clicked through node-c: %d %s, want 200 with the card updated to Approved", code, body)
	}
	if !steps.Poll(30*time.Second, func() bool {
		b, err := os.ReadFile(target)
		return err == nil && string(b) == "approved through node C\n"
	}) {
		t.Errorf("via-c.txt not written within 30 s of the approval through node-c")
	}
	w.waitDone(t, s, before, turnTimeout, "the turn approved through node-c")
	w.servedOnlyBy(t, s, "node-a")

	// REST reads through B equal the same through A, once the session is idle.
	time.Sleep(time.Second)
	for _, path := range []string{"/api/v1/sessions/" + s.id, "/api/v1/sessions/" + s.id + "/history", "/api/v1/sessions",
		"/api/v1/sessions/" + s.id + "/approvals", "/api/v1/channels/" + s.channel} {
		codeA, bodyA := w.rest(t, "node-a", "GET", path)
		codeB, bodyB := w.rest(t, "node-b", "GET", path)
		var a, b any
		_ = json.Unmarshal(bodyA, &a)
		_ = json.Unmarshal(bodyB, &b)
		if codeA != 200 {
			t.Errorf("GET %s through node-a (the owner): %d %s", path, codeA, bodyA)
		}
		if codeB != codeA || !reflect.DeepEqual(a, b) {
			t.Errorf("GET %s: node-b answers %d %.400s\nnode-a answers %d %.400s", path, codeB, bodyB, codeA, bodyA)
		}
	}

	// The nodes share the data directory: a thread in a channel without a session costs no
	// look into the cluster's directory of channels (that is for nodes with directories of
	// their own, TestClusterUnsharedDataDirectory).
	chatter := w.newSessionChannel(t, "chatter")
	since := time.Now()
	root, err := harness.Posted(w.hooks(t, "node-b"), w.api, hookTimeout, &model.Post{ChannelId: chatter.channel, UserId: owner, Message: "lunch?"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := harness.Posted(w.hooks(t, "node-b"), w.api, hookTimeout, &model.Post{ChannelId: chatter.channel, UserId: owner, RootId: root.Id, Message: "yes"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range w.c.CallsBy("node-b", since, "KVGet") {
		if strings.HasPrefix(c.Key(), "chan_") {
			t.Errorf("node-b read %s for a reply in a channel without a session, though the nodes share the data directory", c.Key())
		}
	}
}

// servedOnlyBy: the session's CLI runs under node and nowhere else, now.
func (w *world) servedOnlyBy(t *testing.T, s *session, node string) {
	t.Helper()
	clis := w.clisOf(s)
	if len(clis[node]) != 1 || len(clis) != 1 {
		t.Errorf("the session's CLIs by node: %+v, want exactly one, under %s", clis, node)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
