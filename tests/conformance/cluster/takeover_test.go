package cluster

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/harness"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

// kill -9 of the owner's plugin (not restarted): within LEASE + 10 s a prompt through B is
// answered with the earlier conversation in context, the thread says the session moved, and
// no card keeps buttons for a request nobody can answer. The session may be taken over by B
// (the prompt found its lease run out) or by C (it found the orphan first, and B forwards).
func TestClusterKillOwner(t *testing.T) {
	w := newWorld(t, 3, false)
	w.activate(t)
	s := w.start(t, "node-a", "kill")
	word := "PELICAN-" + steps.RandHex(4)
	if err := w.model.Start("remember", []map[string]any{fakemodel.TextTurn("I will remember it.", 0)}); err != nil {
		t.Fatal(err)
	}
	before := w.postIDs(s)
	if _, err := w.command(t, "node-a", s, "/claude Remember the word "+word); err != nil {
		t.Fatal(err)
	}
	if w.waitDone(t, s, before, turnTimeout, "the turn on node-a") == nil {
		t.FailNow()
	}
	// A request pending at the kill.
	never := filepath.Join(s.project, "never.txt")
	if err := w.model.Start("pending", []map[string]any{fakemodel.WriteTurn(never, "nobody approved this\n")}); err != nil {
		t.Fatal(err)
	}
	before = w.postIDs(s)
	if _, err := w.command(t, "node-a", s, "/claude Create never.txt"); err != nil {
		t.Fatal(err)
	}
	card := w.waitCard(t, s, before, turnTimeout)
	w.servedOnlyBy(t, s, "node-a")
	fenceBefore, _ := w.lease(s)

	if err := w.model.Start("after-kill", []map[string]any{fakemodel.TextTurn("Still here, on another node.", 0)}); err != nil {
		t.Fatal(err)
	}
	beforeKill := w.postIDs(s)
	mark := w.model.Mark()
	killed := time.Now()
	if err := w.c.Kill9("node-a"); err != nil {
		t.Fatal(err)
	}
	deadline := killed.Add(lease + 10*time.Second)

	// The next prompt, through B; sent again only if the plugin told the user to retry.
	const prompt = "/claude Which word did I ask you to remember? AFTER-KILL"
	var replies []string
	send := func() {
		r, err := w.command(t, "node-b", s, prompt)
		if err != nil {
			replies = append(replies, "error: "+err.Error())
			return
		}
		replies = append(replies, r.Reply)
	}
	send()
	lastSend := time.Now()
	var done *model.Post
	for time.Now().Before(deadline) && done == nil {
		if ps := w.doneReplies(s, beforeKill); len(ps) > 0 {
			done = ps[0]
			break
		}
		last := replies[len(replies)-1]
		if w.requestWith(mark, "AFTER-KILL") == nil && time.Since(lastSend) > 2*time.Second &&
			containsAny(strings.ToLower(last), "did not answer", "try again", "retry", "error:") {
			send()
			lastSend = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("after the kill: answered %v after %v; command replies: %q", done != nil, time.Since(killed).Round(100*time.Millisecond), replies)
	if done == nil {
		t.Errorf("no answer in the thread within LEASE + 10 s (%v) of the owner's kill -9, to a prompt through node-b; replies %q; new bot posts: %s",
			lease+10*time.Second, replies, steps.DescribePosts(w.botThreadPosts(s, beforeKill, false)))
	}
	if r := w.requestWith(mark, "AFTER-KILL"); r == nil {
		t.Errorf("the prompt through node-b never reached the model after the kill")
	} else if !strings.Contains(r.Text, word) {
		t.Errorf("the model's request after the takeover lacks the earlier conversation (the word %s): the session was not resumed from the shared data directory", word)
	}
	moved := false
	for _, p := range w.api.Posts(s.channel) {
		if !beforeKill[p.Id] && p.UserId == w.botID && strings.Contains(strings.ToLower(steps.Shown(p.Message, p.GetProps())), "moved") {
			moved = true
		}
	}
	if !moved {
		t.Errorf("no bot post after the kill says the session moved; new posts: %s", steps.DescribePosts(newPosts(w, s, beforeKill)))
	}
	// The card of the request A's CLI was asking: no buttons left (withdrawn), and any card
	// that has buttons is one the session can still answer (pending through B's REST).
	if !steps.Poll(time.Until(deadline.Add(5*time.Second)), func() bool {
		p, err := w.api.GetPost(card.Id)
		return err == nil && len(steps.Actions(p.GetProps())) == 0
	}) {
		t.Errorf("the card pending at the kill still has buttons for a request nobody can answer")
	}
	pending := w.pendingApprovals(t, "node-b", s)
	for _, p := range w.api.Posts(s.channel) {
		for _, a := range steps.Actions(p.GetProps()) {
			if a.Integration == nil {
				continue
			}
			if id := fmt.Sprint(a.Integration.Context["request_id"]); !pending[id] {
				t.Errorf("card %s still has the button %q for request %s, which the session does not have pending (pending: %v)", p.Id, a.Id, id, pending)
			}
		}
	}
	if _, err := os.Stat(never); err == nil {
		t.Error("never.txt was written although nobody approved it")
	}
	// Whichever node took the session over (the one the prompt reached, or one that found the
	// orphan first) runs it alone, under a greater fence.
	l, ok := w.lease(s)
	if !ok || l.Node == "node-a" || l.Fence <= fenceBefore.Fence {
		t.Errorf("lease after the takeover %+v (present %v), want another node than node-a with a fence above %d", l, ok, fenceBefore.Fence)
	}
	w.servedOnlyBy(t, s, l.Node)
}

// kill -9 of the owner with a card pending, and then nobody calls: another node finds the
// orphaned session by itself (it looks every RENEW), takes it over, closes the card and says
// in the thread that the session moved, within LEASE + SKEW + RENEW and a margin. The node that
// takes it over runs no CLI until someone prompts.
func TestClusterOrphanTakenOverWithoutACall(t *testing.T) {
	w := newWorld(t, 3, false)
	w.activate(t)
	s := w.start(t, "node-a", "orphan")
	never := filepath.Join(s.project, "never.txt")
	if err := w.model.Start("pending", []map[string]any{fakemodel.WriteTurn(never, "nobody approved this\n")}); err != nil {
		t.Fatal(err)
	}
	before := w.postIDs(s)
	if _, err := w.command(t, "node-a", s, "/claude Create never.txt"); err != nil {
		t.Fatal(err)
	}
	card := w.waitCard(t, s, before, turnTimeout)
	fenceBefore, _ := w.lease(s)
	beforeKill := w.postIDs(s)
	killed := time.Now()
	if err := w.c.Kill9("node-a"); err != nil {
		t.Fatal(err)
	}
	within := lease + skew + lease/3 + 5*time.Second
	if !steps.Poll(within, func() bool {
		p, err := w.api.GetPost(card.Id)
		return err == nil && len(steps.Actions(p.GetProps())) == 0
	}) {
		t.Errorf("the card pending at the kill still has buttons %v after the kill, and nobody called", within)
	}
	movedPost := func() bool {
		for _, p := range w.api.Posts(s.channel) {
			if !beforeKill[p.Id] && p.UserId == w.botID && strings.Contains(strings.ToLower(steps.Shown(p.Message, p.GetProps())), "moved") {
				return true
			}
		}
		return false
	}
	if !steps.Poll(time.Until(killed.Add(within)), movedPost) {
		t.Errorf("no bot post says the session moved within %v of the kill; new posts: %s", within, steps.DescribePosts(newPosts(w, s, beforeKill)))
	}
	t.Logf("orphan taken over %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	l, ok := w.lease(s)
	if !ok || l.Node == "node-a" || l.Fence <= fenceBefore.Fence {
		t.Errorf("lease after the takeover %+v (present %v), want another node with a fence above %d", l, ok, fenceBefore.Fence)
	}
	for node, procs := range w.clisOf(s) {
		if len(procs) > 0 && node != "node-a" {
			t.Errorf("node %s runs a CLI for the session although nobody prompted since the takeover", node)
		}
	}
	if _, err := os.Stat(never); err == nil {
		t.Error("never.txt was written although nobody approved it")
	}
}

// Split brain: A's plugin paused (SIGSTOP) past its lease, another node takes over (B, where
// the next prompt goes, or C, if it found the orphan first), A resumed: at no moment two CLIs
// serve the session, and nothing A does after resuming reaches the posts, the websocket, the
// lease or the CLI's conversation files.
func TestClusterSplitBrain(t *testing.T) {
	w := newWorld(t, 3, false)
	w.activate(t)
	s := w.start(t, "node-a", "split")
	watch := w.c.WatchCLIs(50*time.Millisecond, func(p harness.CLIProc) bool { return p.Cwd == s.project })
	if err := w.model.Start("split-one", []map[string]any{fakemodel.TextTurn("Node A answering.", 0)}); err != nil {
		t.Fatal(err)
	}
	before := w.postIDs(s)
	if _, err := w.command(t, "node-a", s, "/claude First question SPLIT-ONE"); err != nil {
		t.Fatal(err)
	}
	if w.waitDone(t, s, before, turnTimeout, "the turn on node-a") == nil {
		t.FailNow()
	}
	w.servedOnlyBy(t, s, "node-a")
	fenceBefore, _ := w.lease(s)

	paused := time.Now()
	if err := w.c.Pause("node-a"); err != nil {
		t.Fatal(err)
	}
	// The conversation files, sampled from the pause until B's CLI exists: A's CLI (whose
	// plugin is paused) may finish what it does while A's lease runs (its supervisor stops it
	// before the lease's end), but must not write them after the lease A last wrote expired:
	// from then on another node may run the session.
	held, _ := w.lease(s)
	files := newFileSampler(w.dataDir, time.UnixMilli(held.ExpiresAt))
	// Until another node's CLI runs the session (B's, where the prompt goes, or C's, if C found
	// the orphan first and B forwards to it).
	stopFiles := files.run(50*time.Millisecond, func() bool {
		for node, procs := range w.clisOf(s) {
			if node != "node-a" && len(procs) > 0 {
				return true
			}
		}
		return false
	})
	t.Logf("conversation files at the pause: %v", files.paths())
	if len(files.paths()) == 0 {
		t.Errorf("no conversation file (*.jsonl under .claude/projects) in the shared data directory %s after a turn", w.dataDir)
	}

	time.Sleep(time.Until(paused.Add(lease + skew + time.Second)))
	if err := w.model.Start("split-two", []map[string]any{fakemodel.TextTurn("Node B took over.", 0)}); err != nil {
		t.Fatal(err)
	}
	before = w.postIDs(s)
	mark := w.model.Mark()
	r, err := w.command(t, "node-b", s, "/claude Second question SPLIT-TWO")
	if err != nil {
		t.Fatal(err)
	}
	if !steps.Poll(patience(r.Reply), func() bool { return w.requestWith(mark, "SPLIT-TWO") != nil }) {
		t.Errorf("the prompt through node-b after node-a's lease ran out never reached the model (reply %q)", r.Reply)
	}
	w.waitDone(t, s, before, patience(r.Reply), "the prompt through node-b while node-a is paused")
	taker, _ := w.lease(s)
	if taker.Node == "node-a" || taker.Node == "" {
		t.Errorf("the lease after node-a's ran out: %+v, want another node", taker)
	}
	w.servedOnlyBy(t, s, taker.Node)
	changed := stopFiles()
	if len(changed) > 0 {
		t.Errorf("conversation files written after node-a's lease expired (%s) and before node-b's CLI start (only node-a's CLI could): %v",
			time.UnixMilli(held.ExpiresAt).Format("15:04:05.000"), changed)
	}

	resumed := time.Now()
	if err := w.c.Resume("node-a"); err != nil {
		t.Fatal(err)
	}
	afterResume := w.c.WatchCLIs(50*time.Millisecond, func(p harness.CLIProc) bool { return p.Node == "node-a" && p.Cwd == s.project })
	// Long enough for every renewal, post update or event A still had in mind.
	time.Sleep(lease + skew)
	if res := afterResume.Stop(); res.Most > 0 {
		t.Errorf("node-a ran a CLI for the session after resuming (seen in %d samples' worst case: %d)", res.Samples, res.Most)
	}
	for _, c := range w.c.CallsBy("node-a", resumed, "CreatePost", "UpdatePost", "DeletePost", "PublishWebSocketEvent") {
		t.Errorf("node-a, resumed after losing the lease, called %s at +%v: %s", c.Method, c.At.Sub(resumed).Round(time.Millisecond), describeArgs(c))
	}
	leaseKey := "lease_" + s.id
	for _, c := range w.c.CallsBy("node-a", resumed, "KVSet", "KVSetWithExpiry", "KVSetWithOptions", "KVCompareAndSet", "KVCompareAndDelete", "KVDelete") {
		if c.Key() == leaseKey {
			t.Errorf("node-a, resumed after losing the lease, called %s on %s at +%v", c.Method, leaseKey, c.At.Sub(resumed).Round(time.Millisecond))
		}
	}
	if l, ok := w.lease(s); !ok || l.Node != taker.Node || l.Fence <= fenceBefore.Fence {
		t.Errorf("lease after the split %+v (present %v), want %s with a fence above %d", l, ok, taker.Node, fenceBefore.Fence)
	}

	// Node A, resumed, now forwards: a prompt through it is served by B's CLI.
	if err := w.model.Start("split-three", []map[string]any{fakemodel.TextTurn("Still node B.", 0)}); err != nil {
		t.Fatal(err)
	}
	before = w.postIDs(s)
	r, err = w.command(t, "node-a", s, "/claude Third question SPLIT-THREE")
	if err != nil {
		t.Error(err)
	}
	w.waitDone(t, s, before, patience(r.Reply), "a prompt through the resumed node-a")
	w.servedOnlyBy(t, s, taker.Node)

	res := watch.Stop()
	t.Logf("CLI samples: %d, most at once: %d, nodes: %v", res.Samples, res.Most, res.Nodes)
	if res.Most > 1 {
		t.Errorf("two CLIs served the session at once: %v", res.Over)
	}
}

// pendingApprovals are the request ids the session has pending, through node's REST API.
func (w *world) pendingApprovals(t *testing.T, node string, s *session) map[string]bool {
	t.Helper()
	code, body := w.rest(t, node, "GET", "/api/v1/sessions/"+s.id+"/approvals")
	var list struct {
		Approvals []struct {
			ID    string `json:"approval_id"`
			State string `json:"state"`
		} `json:"approvals"`
	}
	out := map[string]bool{}
	if code != 200 || json.Unmarshal(body, &list) != nil {
		t.Errorf("GET approvals through %s: %d %s", node, code, body)
		return out
	}
	for _, a := range list.Approvals {
		if a.State == "pending" {
			out[a.ID] = true
		}
	}
	return out
}

func newPosts(w *world, s *session, before map[string]bool) []*model.Post {
	var out []*model.Post
	for _, p := range w.api.Posts(s.channel) {
		if !before[p.Id] {
			out = append(out, p)
		}
	}
	return out
}

func describeArgs(c harness.APICall) string {
	if p := c.Post(); p != nil {
		return fmt.Sprintf("post %s in %s: %.200q", p.Id, p.ChannelId, p.Message)
	}
	if len(c.Args) > 0 {
		return fmt.Sprintf("%.200v", c.Args[0])
	}
	return ""
}

// fileSampler watches the Claude Code conversation files (*.jsonl under .claude/projects) in
// a directory tree.
type fileSampler struct {
	root string
	// Only writes after this moment count.
	after time.Time
	mu    sync.Mutex
	first map[string]fileStamp
	diffs []string
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

func newFileSampler(root string, after time.Time) *fileSampler {
	f := &fileSampler{root: root, after: after}
	f.first = f.scan()
	return f
}

func (f *fileSampler) scan() map[string]fileStamp {
	out := map[string]fileStamp{}
	_ = filepath.WalkDir(f.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".jsonl") || !strings.Contains(path, "/.claude/projects/") {
			return nil
		}
		if info, err := d.Info(); err == nil {
			out[path] = fileStamp{info.Size(), info.ModTime()}
		}
		return nil
	})
	return out
}

func (f *fileSampler) paths() []string {
	var out []string
	for p := range f.first {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// run samples every `every` until until() holds or the returned stop is called; stop returns
// the changes seen (a file created, grown, or touched since the first scan).
func (f *fileSampler) run(every time.Duration, until func() bool) func() []string {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if until() {
				return
			}
			now := f.scan()
			f.mu.Lock()
			for p, st := range now {
				was, ok := f.first[p]
				if (!ok || was != st) && st.mtime.After(f.after) && !slices.ContainsFunc(f.diffs, func(d string) bool { return strings.HasPrefix(d, p+" ") }) {
					f.diffs = append(f.diffs, fmt.Sprintf("%s (size %d→%d, mtime %s→%s)", p, was.size, st.size,
						was.mtime.Format("15:04:05.000"), st.mtime.Format("15:04:05.000")))
				}
			}
			f.mu.Unlock()
			select {
			case <-quit:
				return
			case <-time.After(every):
			}
		}
	}()
	return func() []string {
		select {
		case <-done:
		default:
			close(quit)
			<-done
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		return append([]string(nil), f.diffs...)
	}
}

// A session at rest is nobody's: after every node restarted (a clean deactivation stores its
// sessions stopped and releases their leases), no node takes or renews its lease, and the first
// calls for it, several at once through B, take it there and resume the conversation.
func TestClusterRestingSessionTakenOnFirstCall(t *testing.T) {
	w := newWorld(t, 3, false)
	w.activate(t)
	s := w.start(t, "node-a", "resting")
	word := "OSPREY-" + steps.RandHex(4)
	if err := w.model.Start("remember", []map[string]any{fakemodel.TextTurn("I will remember it.", 0)}); err != nil {
		t.Fatal(err)
	}
	before := w.postIDs(s)
	if _, err := w.command(t, "node-a", s, "/claude Remember the word "+word); err != nil {
		t.Fatal(err)
	}
	if w.waitDone(t, s, before, turnTimeout, "the turn on node-a") == nil {
		t.FailNow()
	}
	for _, n := range w.c.Nodes {
		if err := n.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	restarted := time.Now()
	released, ok := w.lease(s)
	if !ok || released.ExpiresAt != 0 {
		t.Errorf("after every node restarted the session's lease is %+v (present %v), want released", released, ok)
	}
	time.Sleep(2 * lease)
	if l, _ := w.lease(s); l != released {
		t.Errorf("the resting session's lease changed from %+v to %+v with nobody calling", released, l)
	}
	for _, c := range w.c.Calls() {
		if c.At.After(restarted) && c.Key() == "lease_"+s.id {
			t.Errorf("%s called %s on the resting session's lease with nobody calling", c.Node, c.Method)
		}
	}

	// The webapp asks several things of a session at once: each of these first calls, in
	// parallel through B, is served (one takes the session, the others wait for it).
	paths := []string{"", "/history", "/approvals", "", "/history", "/approvals"}
	codes := make([]string, len(paths))
	hooksB := w.hooks(t, "node-b")
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := harness.ServeHTTP(hooksB, hookTimeout, "GET", "/api/v1/sessions/"+s.id+p, owner, nil)
			if err != nil {
				codes[i] = err.Error()
				return
			}
			codes[i] = fmt.Sprintf("%d %s", rec.Code, tail(rec.Body.String(), 200))
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if !strings.HasPrefix(c, "200 ") {
			t.Errorf("GET /api/v1/sessions/{id}%s through node-b, in parallel with %d others, as the first calls for the resting session: %s", paths[i], len(paths)-1, c)
		}
	}

	if err := w.model.Start("recall", []map[string]any{fakemodel.TextTurn("The word was remembered.", 0)}); err != nil {
		t.Fatal(err)
	}
	before = w.postIDs(s)
	mark := w.model.Mark()
	r, err := w.command(t, "node-b", s, "/claude Which word did I ask you to remember? AFTER-REST")
	if err != nil {
		t.Fatal(err)
	}
	if w.waitDone(t, s, before, patience(r.Reply), "the prompt through node-b") == nil {
		t.FailNow()
	}
	if req := w.requestWith(mark, "AFTER-REST"); req == nil || !strings.Contains(req.Text, word) {
		t.Errorf("the prompt through node-b did not reach the model with the earlier conversation (the word %s)", word)
	}
	w.servedOnlyBy(t, s, "node-b")
	if l, ok := w.lease(s); !ok || l.Node != "node-b" || l.Fence <= released.Fence {
		t.Errorf("after the first call through node-b the lease is %+v (present %v), want node-b's with a fence above %d", l, ok, released.Fence)
	}
}
