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
// FileSettings.Directory on each host): a session started through A stays on A, and B finds it
// through the cluster's directory, so a thread reply through B is served by A's CLI. kill -9 of
// A: the thread is told once that the session is lost (nobody else has its files), a reply
// through B is answered so, and /claude start through B starts a new session in the channel,
// which B runs.
func TestClusterUnsharedDataDirectory(t *testing.T) {
	w := newWorld(t, 3, false)
	if err := w.c.SeparateFileStorage(); err != nil {
		t.Fatal(err)
	}
	// Empty: each node's default, under its own file storage.
	w.config["DataDirectory"] = ""
	w.api.SetConfig(w.config)
	w.activate(t)
	s := w.start(t, "node-a", "unshared")

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

	beforeKill := w.postIDs(s)
	killed := time.Now()
	if err := w.c.Kill9("node-a"); err != nil {
		t.Fatal(err)
	}
	// The lease runs out (LEASE + SKEW), then a node's search for lost sessions (every 3 RENEW)
	// finds it.
	lostWithin := lease + skew + 3*lease/3 + 5*time.Second
	lostPosts := func() []*model.Post {
		var out []*model.Post
		for _, p := range w.api.Posts(s.channel) {
			if !beforeKill[p.Id] && p.UserId == w.botID && p.RootId == s.root && strings.Contains(p.Message, "This session is lost") {
				out = append(out, p)
			}
		}
		return out
	}
	if !steps.Poll(lostWithin, func() bool { return len(lostPosts()) > 0 }) {
		t.Fatalf("no post in the thread says the session is lost within %v of node-a's kill -9; new posts: %s",
			lostWithin, steps.DescribePosts(newPosts(w, s, beforeKill)))
	}
	t.Logf("the thread was told the session is lost %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	// Two more searches by each node: still one post.
	time.Sleep(2 * lease)
	if n := len(lostPosts()); n != 1 {
		t.Errorf("%d posts say the session is lost, want exactly 1: %s", n, steps.DescribePosts(lostPosts()))
	}
	if l, ok := w.lease(s); !ok || l.ExpiresAt != 0 {
		t.Errorf("the lost session's lease is %+v (present %v), want released by the node that told the thread", l, ok)
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

	// A new session in the same channel, through B, runs on B.
	r, err := w.command(t, "node-b", s, "/claude start "+s.project)
	if err != nil {
		t.Fatal(err)
	}
	var newRoot string
	if !steps.Poll(hookTimeout, func() bool {
		for _, p := range w.api.Posts(s.channel) {
			if p.UserId == w.botID && p.RootId == "" && p.Id != s.root && strings.Contains(p.Message, "Claude Code session started") {
				newRoot = p.Id
				return true
			}
		}
		return false
	}) {
		t.Fatalf("/claude start through node-b after the loss started no session (reply %q)", r.Reply)
	}
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
