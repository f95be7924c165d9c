package cluster

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

// Each node with a data directory of its own (a cluster that keeps its files in S3 keeps
// FileSettings.Directory on each host). Two sessions started through A stay on A; B finds them
// through the cluster's directory, so a thread reply through B is served by A's CLI. kill -9 of
// A: each thread is told once that its session is lost (nobody else has its files), and a reply
// through B is answered so. /claude start through B in the first channel starts a new session
// there, on B. A comes back: the second session is back (its thread says so, and a reply
// through C is answered by A's CLI with the earlier conversation; a third, stopped before the
// kill, is found by A's search and is back too); the first, superseded, is not run again, and
// its channel's replies reach B's new session, even through A. A restarts
// cleanly: B still finds the second session run by A.
func TestClusterUnsharedDataDirectory(t *testing.T) {
	w := newUnsharedWorld(t)
	s := w.start(t, "node-a", "unshared")
	s2 := w.start(t, "node-a", "unshared-two")

	if err := w.model.Start("reply-b", []map[string]any{fakemodel.TextTurn("Served by node A.", 0)}); err != nil {
		t.Fatal(err)
	}
	before := w.postIDs(s)
	mark := w.model.Mark()
	w.threadReply(t, "node-b", s, "Hello through UNSHARED-VIA-B")
	if !steps.Poll(turnTimeout, func() bool { return w.requestWith(mark, "UNSHARED-VIA-B") != nil }) {
		t.Fatalf("the thread reply posted on node-b never reached the model: node-b did not find the session node-a runs")
	}
	w.waitDone(t, s, before, turnTimeout, "the thread reply through node-b")
	w.servedOnlyBy(t, s, "node-a")
	for _, n := range w.c.Nodes {
		got := conversationFiles(filepath.Join(n.Files, "claude-code"))
		if want := n.ID == "node-a"; (got > 0) != want {
			t.Errorf("%s's data directory holds %d conversation files; want some only on node-a (each node has its own directory)", n.ID, got)
		}
	}
	word := "HERON-" + steps.RandHex(4)
	if err := w.model.Start("remember", []map[string]any{fakemodel.TextTurn("I will remember it.", 0)}); err != nil {
		t.Fatal(err)
	}
	before = w.postIDs(s2)
	w.threadReply(t, "node-c", s2, "Remember the word "+word)
	w.waitDone(t, s2, before, turnTimeout, "the second session's turn through node-c")

	// A third session, stopped: it rests, but its lease stays with node-a.
	s3 := w.start(t, "node-a", "unshared-three")
	w.stop(t, "node-a", s3)

	beforeKill := map[*session]map[string]bool{s: w.postIDs(s), s2: w.postIDs(s2), s3: w.postIDs(s3)}
	killed := time.Now()
	if err := w.c.Kill9("node-a"); err != nil {
		t.Fatal(err)
	}
	// The lease runs out (LEASE + SKEW), then a node's search for lost sessions (every 3 RENEW)
	// finds it.
	lostWithin := lease + skew + 3*lease/3 + 5*time.Second
	said := func(x *session, text string) []*model.Post {
		var out []*model.Post
		for _, p := range w.api.Posts(x.channel) {
			if !beforeKill[x][p.Id] && p.UserId == w.botID && p.RootId == x.root && strings.Contains(p.Message, text) {
				out = append(out, p)
			}
		}
		return out
	}
	for _, x := range []*session{s, s2, s3} {
		if !steps.Poll(time.Until(killed.Add(lostWithin)), func() bool { return len(said(x, "This session is lost")) > 0 }) {
			t.Fatalf("no post in %s's thread says the session is lost within %v of node-a's kill -9; new posts: %s",
				x.name, lostWithin, steps.DescribePosts(newPosts(w, x, beforeKill[x])))
		}
	}
	t.Logf("the three threads were told their session is lost %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	// Two more searches by each node: still one post each.
	time.Sleep(2 * lease)
	for _, x := range []*session{s, s2, s3} {
		if n := len(said(x, "This session is lost")); n != 1 {
			t.Errorf("%d posts in %s's thread say the session is lost, want exactly 1: %s", n, x.name, steps.DescribePosts(said(x, "")))
		}
		if l, ok := w.lease(x); !ok || l.ExpiresAt != 0 {
			t.Errorf("%s's lease is %+v (present %v), want released by the node that told the thread", x.name, l, ok)
		}
	}

	// A reply through B is told so, not left unanswered.
	w.threadReply(t, "node-b", s, "Are you still there? AFTER-LOSS")
	if !steps.Poll(hookTimeout, func() bool {
		for _, p := range w.api.EphemeralPosts() {
			if p.ChannelId == s.channel && p.RootId == s.root && strings.Contains(p.Message, "ran on another Mattermost server") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("a thread reply through node-b after the loss got no answer saying the session is lost")
	}

	// A new session in the first channel, through B, runs on B.
	newRoot := w.startAgain(t, "node-b", s, "after the loss")
	fresh := &session{name: s.name, channel: s.channel, project: s.project, root: newRoot}
	if err := w.model.Start("fresh", []map[string]any{fakemodel.TextTurn("A fresh start on node B.", 0)}); err != nil {
		t.Fatal(err)
	}
	before = w.postIDs(fresh)
	mark = w.model.Mark()
	w.threadReply(t, "node-c", fresh, "First words to the NEW-SESSION")
	if !steps.Poll(turnTimeout, func() bool { return w.requestWith(mark, "NEW-SESSION") != nil }) {
		t.Fatalf("a thread reply through node-c to the new session never reached the model")
	}
	w.waitDone(t, fresh, before, turnTimeout, "the new session's first turn")
	w.servedOnlyBy(t, fresh, "node-b")

	// A comes back.
	if err := w.c.Node("node-a").Restart(); err != nil {
		t.Fatal(err)
	}
	if !steps.Poll(hookTimeout, func() bool { return len(said(s2, "This session is back")) > 0 }) {
		t.Errorf("node-a came back, and no post in the second session's thread says it is back; new posts: %s",
			steps.DescribePosts(newPosts(w, s2, beforeKill[s2])))
	}
	// The stopped one is not taken at opening (nothing needs it), but node-a's search of the
	// directory finds it told lost and takes it back.
	if !steps.Poll(hookTimeout+lease, func() bool { return len(said(s3, "This session is back")) > 0 }) {
		t.Errorf("node-a came back, and no post in the stopped session's thread says it is back; new posts: %s",
			steps.DescribePosts(newPosts(w, s3, beforeKill[s3])))
	}
	if back := said(s, "This session is back"); len(back) != 0 {
		t.Errorf("the first session, superseded by the one node-b started, was announced back: %s", steps.DescribePosts(back))
	}
	if err := w.model.Start("recall", []map[string]any{fakemodel.TextTurn("The word was remembered.", 0)}); err != nil {
		t.Fatal(err)
	}
	before = w.postIDs(s2)
	mark = w.model.Mark()
	w.threadReply(t, "node-c", s2, "Which word did I ask you to remember? AFTER-RETURN")
	if !steps.Poll(turnTimeout, func() bool { return w.requestWith(mark, "AFTER-RETURN") != nil }) {
		t.Fatalf("a reply through node-c to the session that is back never reached the model")
	}
	if req := w.requestWith(mark, "AFTER-RETURN"); !strings.Contains(req.Text, word) {
		t.Errorf("the model's request after node-a came back lacks the earlier conversation (the word %s)", word)
	}
	w.waitDone(t, s2, before, turnTimeout, "the turn of the session that is back")
	w.servedOnlyBy(t, s2, "node-a")

	// The first channel's session is B's new one, whichever node a reply lands on.
	if err := w.model.Start("fresh-again", []map[string]any{fakemodel.TextTurn("Still node B.", 0)}); err != nil {
		t.Fatal(err)
	}
	before = w.postIDs(fresh)
	mark = w.model.Mark()
	w.threadReply(t, "node-a", fresh, "Through the node that came back: AGAIN-NEW")
	if !steps.Poll(turnTimeout, func() bool { return w.requestWith(mark, "AGAIN-NEW") != nil }) {
		t.Fatalf("a reply through node-a to node-b's new session never reached the model")
	}
	w.waitDone(t, fresh, before, turnTimeout, "the new session's turn through node-a")
	w.servedOnlyBy(t, fresh, "node-b")

	// A restarts cleanly (its sessions stored stopped, their leases released): it holds its
	// channels' sessions again from its opening, so a reply through B is served by A, not
	// answered as lost, and no thread is told anything.
	if err := w.c.Node("node-a").Restart(); err != nil {
		t.Fatal(err)
	}
	if err := w.model.Start("after-clean-restart", []map[string]any{fakemodel.TextTurn("Node A again.", 0)}); err != nil {
		t.Fatal(err)
	}
	before = w.postIDs(s2)
	mark = w.model.Mark()
	ephemeralBefore := len(w.api.EphemeralPosts())
	w.threadReply(t, "node-b", s2, "After a clean restart of node A: CLEAN-RESTART")
	if !steps.Poll(turnTimeout, func() bool { return w.requestWith(mark, "CLEAN-RESTART") != nil }) {
		for _, p := range w.api.EphemeralPosts() {
			if p.ChannelId == s2.channel {
				t.Logf("ephemeral in the second channel: %q", p.Message)
			}
		}
		t.Fatalf("a reply through node-b to node-a's session after node-a restarted cleanly never reached the model")
	}
	w.waitDone(t, s2, before, turnTimeout, "the turn after node-a's clean restart")
	w.servedOnlyBy(t, s2, "node-a")
	for _, p := range newPosts(w, s2, before) {
		if p.UserId == w.botID && containsAny(p.Message, "is lost", "is back", "moved", "did not answer", "ran on another") {
			t.Errorf("after node-a's clean restart the second session's thread got %q; a clean restart is not a loss", p.Message)
		}
	}
	for _, p := range w.api.EphemeralPosts()[ephemeralBefore:] {
		if p.ChannelId == s2.channel {
			t.Errorf("the reply through node-b after node-a's clean restart was answered %q", p.Message)
		}
	}
}

// conversationFiles counts the CLI's conversation files (*.jsonl) under a data directory.
func conversationFiles(dataDir string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(dataDir, "home"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".jsonl") {
			n++
		}
		return nil
	})
	return n
}

// newUnsharedWorld is a cluster of three whose nodes each keep their own file storage, with
// DataDirectory empty (each node's default, under its own file storage), activated.
func newUnsharedWorld(t *testing.T) *world {
	w := newWorld(t, 3, false)
	if err := w.c.SeparateFileStorage(); err != nil {
		t.Fatal(err)
	}
	w.config["DataDirectory"] = ""
	w.api.SetConfig(w.config)
	w.activate(t)
	return w
}

// stop sends /claude stop for s through node.
func (w *world) stop(t *testing.T, node string, s *session) {
	t.Helper()
	r, err := w.command(t, node, s, "/claude stop")
	if err != nil {
		t.Fatal(err)
	}
	if refusal(r.Reply) {
		t.Fatalf("/claude stop of %s through %s was refused: %q", s.name, node, r.Reply)
	}
}

// startAgain sends /claude start in s's channel through node and returns the new session's
// thread root.
func (w *world) startAgain(t *testing.T, node string, s *session, when string) string {
	t.Helper()
	r, err := w.command(t, node, s, "/claude start "+s.project)
	if err != nil {
		t.Fatal(err)
	}
	var root string
	if !steps.Poll(hookTimeout, func() bool {
		for _, p := range w.api.Posts(s.channel) {
			if p.UserId == w.botID && p.RootId == "" && p.Id != s.root && strings.Contains(p.Message, "Claude Code session started") {
				root = p.Id
				return true
			}
		}
		return false
	}) {
		t.Fatalf("/claude start through %s %s started no session (reply %q)", node, when, r.Reply)
	}
	return root
}
