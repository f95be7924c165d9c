package cluster

import (
	"strings"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"
)

// Data directories of each node's own, and the node running a session restarts. Killed and
// back at once (before its lease ran out), it releases what its killed run held: nobody tells
// the channel the session is lost, and a reply through B is served by A, which takes the
// resting session back when the call reaches it. Stopped cleanly and not back, a reply
// through B is told the session goes on when that server is back, and /claude start through B
// begins a new session there.
func TestClusterUnsharedNodeRestarts(t *testing.T) {
	w := newUnsharedWorld(t)
	s := w.start(t, "node-a", "restarts")
	w.stop(t, "node-a", s)
	before := w.postIDs(s)
	ephemeralBefore := len(w.api.EphemeralPosts())

	if err := w.c.Kill9("node-a"); err != nil {
		t.Fatal(err)
	}
	if err := w.c.Node("node-a").Restart(); err != nil {
		t.Fatal(err)
	}
	// Past the lease's end and a search for lost sessions by every node.
	time.Sleep(lease + skew + lease + 3*time.Second)
	for _, p := range newPosts(w, s, before) {
		if p.UserId == w.botID {
			t.Errorf("node-a was killed and back at once, and the thread got %q", p.Message)
		}
	}

	if err := w.model.Start("quick", []map[string]any{fakemodel.TextTurn("Node A took it back.", 0)}); err != nil {
		t.Fatal(err)
	}
	mark := w.model.Mark()
	w.threadReply(t, "node-b", s, "After a quick restart of node A: QUICK-RESTART")
	if !steps.Poll(turnTimeout, func() bool { return w.requestWith(mark, "QUICK-RESTART") != nil }) {
		for _, p := range w.api.EphemeralPosts()[ephemeralBefore:] {
			t.Logf("ephemeral: %q", p.Message)
		}
		t.Fatalf("a reply through node-b to node-a's resting session never reached the model")
	}
	w.waitDone(t, s, before, turnTimeout, "the turn after node-a's quick restart")
	w.servedOnlyBy(t, s, "node-a")
	for _, p := range w.api.EphemeralPosts()[ephemeralBefore:] {
		if p.ChannelId == s.channel {
			t.Errorf("the reply through node-b after node-a's quick restart was answered %q", p.Message)
		}
	}

	// A stops cleanly and stays down.
	if err := w.c.Node("node-a").Deactivate(); err != nil {
		t.Fatal(err)
	}
	ephemeralBefore = len(w.api.EphemeralPosts())
	w.threadReply(t, "node-b", s, "Is anyone there? WHILE-AWAY")
	if !steps.Poll(hookTimeout, func() bool {
		for _, p := range w.api.EphemeralPosts()[ephemeralBefore:] {
			if p.ChannelId == s.channel && strings.Contains(p.Message, "goes on when that server is back") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("a reply through node-b while node-a is stopped was not told the session goes on when that server is back")
	}
	w.startAgain(t, "node-b", s, "while node-a is stopped")
}
