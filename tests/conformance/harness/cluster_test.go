package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// inbox records what a node's receiver got.
type inbox struct {
	mu  sync.Mutex
	got map[string][]string // by receiving node: event ids in arrival order
	at  map[string]time.Time
}

func newInbox() *inbox { return &inbox{got: map[string][]string{}, at: map[string]time.Time{}} }

func (ib *inbox) attach(b *Bus, node string) {
	b.Attach(node, func(ev model.PluginClusterEvent) error {
		ib.mu.Lock()
		defer ib.mu.Unlock()
		ib.got[node] = append(ib.got[node], ev.Id)
		ib.at[node+"/"+ev.Id] = time.Now()
		return nil
	})
}

func (ib *inbox) of(node string) []string {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	return append([]string(nil), ib.got[node]...)
}

func newTestBus(t *testing.T) (*Bus, *inbox) {
	b := NewBus(NodeIDs(3)...)
	ib := newInbox()
	for _, n := range NodeIDs(3) {
		ib.attach(b, n)
	}
	t.Cleanup(b.Close)
	return b, ib
}

func reliable(target string) model.PluginClusterEventSendOptions {
	return model.PluginClusterEventSendOptions{SendType: model.PluginClusterEventSendTypeReliable, TargetId: target}
}

func bestEffort(target string) model.PluginClusterEventSendOptions {
	return model.PluginClusterEventSendOptions{SendType: model.PluginClusterEventSendTypeBestEffort, TargetId: target}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBusTargetHonouredNeverEchoed(t *testing.T) {
	b, ib := newTestBus(t)
	if err := b.Publish("node-a", model.PluginClusterEvent{Id: "to-b"}, reliable("node-b")); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("node-a", model.PluginClusterEvent{Id: "to-all"}, reliable("")); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("node-c", model.PluginClusterEvent{Id: "be-to-all"}, bestEffort("")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "deliveries", func() bool {
		return len(ib.of("node-b")) == 3 && len(ib.of("node-c")) == 1 && len(ib.of("node-a")) == 1
	})
	time.Sleep(100 * time.Millisecond) // anything extra would show now
	if got := ib.of("node-a"); fmt.Sprint(got) != "[be-to-all]" {
		t.Errorf("node-a got %v: its own events came back to it", got)
	}
	// Different senders' events interleave freely; node-a's arrive in order.
	if got := ib.of("node-b"); !slices.Contains(got, "be-to-all") || fmt.Sprint(slices.DeleteFunc(got, func(id string) bool { return id == "be-to-all" })) != "[to-b to-all]" {
		t.Errorf("node-b got %v", ib.of("node-b"))
	}
	if got := ib.of("node-c"); fmt.Sprint(got) != "[to-all]" {
		t.Errorf("node-c got %v: the event targeted at node-b reached it, or its own came back", got)
	}
	for _, target := range []string{"node-a", "node-z"} {
		err := b.Publish("node-a", model.PluginClusterEvent{Id: "bad"}, reliable(target))
		if err == nil || !strings.Contains(err.Error(), "failed to send message to cluster node") {
			t.Errorf("target %s from node-a: err %v, want the server's send error", target, err)
		}
	}
}

func TestBusReliableInOrderPerPair(t *testing.T) {
	b, ib := newTestBus(t)
	// Jitter would reorder events that were delivered independently; a pair stays in order.
	b.SetFaults(BusFaults{Jitter: 20 * time.Millisecond, Reorder: true})
	const n = 150
	var want []string
	for i := range n {
		id := fmt.Sprintf("e%03d", i)
		want = append(want, id)
		for _, to := range []string{"node-b", "node-c"} {
			if err := b.Publish("node-a", model.PluginClusterEvent{Id: id}, reliable(to)); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, 10*time.Second, "every reliable event", func() bool {
		return len(ib.of("node-b")) == n && len(ib.of("node-c")) == n
	})
	for _, to := range []string{"node-b", "node-c"} {
		if got := ib.of(to); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s got the reliable events out of order: %v", to, got)
		}
	}
	for _, e := range b.Events() {
		if e.Dropped != "" || e.DeliveredAt.IsZero() {
			t.Errorf("reliable event %d not delivered: %+v", e.Seq, e)
		}
	}
}

func TestBusBestEffortDropDelayReorder(t *testing.T) {
	b, ib := newTestBus(t)
	b.SetFaults(BusFaults{DropBestEffort: 0.5})
	const n = 400
	for i := range n {
		if err := b.Publish("node-a", model.PluginClusterEvent{Id: fmt.Sprint("be", i)}, bestEffort("node-b")); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish("node-a", model.PluginClusterEvent{Id: fmt.Sprint("r", i)}, reliable("node-c")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the reliable events", func() bool { return len(ib.of("node-c")) == n })
	time.Sleep(100 * time.Millisecond)
	if got := len(ib.of("node-b")); got < n/4 || got > 3*n/4 {
		t.Errorf("with DropBestEffort 0.5, %d of %d best_effort events arrived", got, n)
	}
	dropped := 0
	for _, e := range b.Events() {
		if e.Dropped != "" {
			dropped++
			if e.SendType != model.PluginClusterEventSendTypeBestEffort {
				t.Errorf("a reliable event was dropped: %+v", e)
			}
		}
	}
	if dropped+len(ib.of("node-b")) != n {
		t.Errorf("%d dropped + %d arrived != %d sent", dropped, len(ib.of("node-b")), n)
	}

	// Delay: nothing arrives before it.
	b.SetFaults(BusFaults{Delay: 300 * time.Millisecond})
	sent := time.Now()
	if err := b.Publish("node-b", model.PluginClusterEvent{Id: "slow"}, reliable("node-a")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if len(ib.of("node-a")) != 0 {
		t.Fatal("a delayed event arrived early")
	}
	waitFor(t, 2*time.Second, "the delayed event", func() bool { return len(ib.of("node-a")) == 1 })
	ib.mu.Lock()
	took := ib.at["node-a/slow"].Sub(sent)
	ib.mu.Unlock()
	if took < 300*time.Millisecond {
		t.Errorf("the delayed event took %v, want >= 300ms", took)
	}

	// Reorder: best_effort events of one pair overtake each other under jitter.
	b.SetFaults(BusFaults{Jitter: 50 * time.Millisecond, Reorder: true})
	for i := range 100 {
		if err := b.Publish("node-c", model.PluginClusterEvent{Id: fmt.Sprintf("x%03d", i)}, bestEffort("node-a")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 3*time.Second, "the jittered events", func() bool { return len(ib.of("node-a")) == 101 })
	got := ib.of("node-a")[1:]
	inOrder := true
	for i := 1; i < len(got); i++ {
		inOrder = inOrder && got[i-1] < got[i]
	}
	if inOrder {
		t.Error("100 best_effort events with 50 ms jitter and Reorder arrived in order")
	}
}

func TestBusPartitionHoldsThenDelivers(t *testing.T) {
	b, ib := newTestBus(t)
	b.Partition("node-b")
	for i := range 5 {
		if err := b.Publish("node-a", model.PluginClusterEvent{Id: fmt.Sprint("in", i)}, reliable("node-b")); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish("node-b", model.PluginClusterEvent{Id: fmt.Sprint("out", i)}, reliable("node-c")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish("node-a", model.PluginClusterEvent{Id: "lost"}, bestEffort("node-b")); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("node-a", model.PluginClusterEvent{Id: "a-to-c"}, reliable("node-c")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "a-to-c (not partitioned)", func() bool { return len(ib.of("node-c")) == 1 })
	time.Sleep(300 * time.Millisecond)
	if got := ib.of("node-b"); len(got) != 0 {
		t.Fatalf("node-b got %v while partitioned", got)
	}
	if got := ib.of("node-c"); fmt.Sprint(got) != "[a-to-c]" {
		t.Fatalf("node-c got %v while node-b was partitioned", got)
	}
	b.Heal("node-b")
	waitFor(t, 2*time.Second, "the held events", func() bool { return len(ib.of("node-b")) == 5 && len(ib.of("node-c")) == 6 })
	if got := ib.of("node-b"); fmt.Sprint(got) != "[in0 in1 in2 in3 in4]" {
		t.Errorf("node-b got %v after healing", got)
	}
	if got := ib.of("node-c")[1:]; fmt.Sprint(got) != "[out0 out1 out2 out3 out4]" {
		t.Errorf("node-c got %v from node-b after healing", got)
	}
	for _, e := range b.Events() {
		if e.Event.Id == "lost" && e.Dropped == "" {
			t.Errorf("a best_effort event into a partition was not dropped: %+v", e)
		}
	}
}

// A receiver that blocks (a paused plugin) delays its own pair, not the others, and gets
// everything once it returns.
func TestBusBlockedReceiver(t *testing.T) {
	b := NewBus(NodeIDs(3)...)
	t.Cleanup(b.Close)
	release := make(chan struct{})
	var mu sync.Mutex
	var gotB, gotC []string
	b.Attach("node-b", func(ev model.PluginClusterEvent) error {
		<-release
		mu.Lock()
		defer mu.Unlock()
		gotB = append(gotB, ev.Id)
		return nil
	})
	b.Attach("node-c", func(ev model.PluginClusterEvent) error {
		mu.Lock()
		defer mu.Unlock()
		gotC = append(gotC, ev.Id)
		return nil
	})
	for i := range 3 {
		_ = b.Publish("node-a", model.PluginClusterEvent{Id: fmt.Sprint(i)}, reliable(""))
	}
	waitFor(t, time.Second, "node-c's events while node-b blocks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(gotC) == 3
	})
	close(release)
	waitFor(t, time.Second, "node-b's events once it returns", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(gotB) == 3
	})
}

// A node's API: its ClusterId, its events on the bus, every call recorded with the node.
func TestNodeAPI(t *testing.T) {
	f := NewFakeAPI("/b")
	f.SetPluginID(PluginID)
	if st, err := f.GetPluginStatus(PluginID); err != nil || st.ClusterId != "" || st.PluginId != PluginID {
		t.Fatalf("plain server GetPluginStatus: %+v %v, want ClusterId \"\"", st, err)
	}
	if _, err := f.GetPluginStatus("other"); err == nil || err.StatusCode != 404 {
		t.Fatalf("GetPluginStatus of another plugin: %v, want 404", err)
	}
	c := &Cluster{API: f, Bus: NewBus(NodeIDs(2)...)}
	t.Cleanup(c.Bus.Close)
	ib := newInbox()
	ib.attach(c.Bus, "node-b")
	a := &Node{ID: "node-a", cluster: c}
	api := nodeAPI{RecordingAPI: RecordingAPI{API: f.ForPlugin(), Record: a.record}, node: a}
	before := time.Now()
	if st, err := api.GetPluginStatus(PluginID); err != nil || st.ClusterId != "node-a" {
		t.Fatalf("node GetPluginStatus: %+v %v", st, err)
	}
	if err := api.PublishPluginClusterEvent(model.PluginClusterEvent{Id: "hello"}, reliable("")); err != nil {
		t.Fatal(err)
	}
	if ok, err := api.KVCompareAndSet("lease_s1", nil, []byte("x")); !ok || err != nil {
		t.Fatal(ok, err)
	}
	waitFor(t, time.Second, "the event on node-b", func() bool { return len(ib.of("node-b")) == 1 })
	calls := c.CallsBy("node-a", before)
	var methods []string
	for _, call := range calls {
		methods = append(methods, call.Method)
	}
	if fmt.Sprint(methods) != "[GetPluginStatus PublishPluginClusterEvent KVCompareAndSet]" {
		t.Fatalf("recorded calls %v", methods)
	}
	if calls[2].Key() != "lease_s1" || c.CallsBy("node-b", before) != nil || c.CallsBy("node-a", time.Now().Add(time.Second)) != nil {
		t.Fatalf("CallsBy filters wrong: %+v", calls)
	}
	if len(f.ClusterEvents()) != 1 {
		t.Fatal("the shared fake did not record the published event")
	}

	// A plain server: ClusterId "", events recorded but sent nowhere.
	c.plain = true
	if st, err := api.GetPluginStatus(PluginID); err != nil || st.ClusterId != "" {
		t.Fatalf("plain node GetPluginStatus: %+v %v", st, err)
	}
	if err := api.PublishPluginClusterEvent(model.PluginClusterEvent{Id: "nobody"}, reliable("")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if len(ib.of("node-b")) != 1 || len(c.Bus.Events()) != 1 || len(f.ClusterEvents()) != 2 {
		t.Fatalf("plain server's event: bus %d events, node-b got %v", len(c.Bus.Events()), ib.of("node-b"))
	}
}

// Process control and CLI discovery, on stand-in processes: a copy of /bin/sh plays a node's
// plugin executable; run with "__supervise" in its arguments it is a supervisor, and its
// child (sleep) is that node's CLI.
func TestNodeProcessControl(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	dir, _ = filepath.EvalSymlinks(dir)
	exe := filepath.Join(dir, "plugin-exe")
	b, err := os.ReadFile(sh)
	if err != nil {
		t.Skip(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command(exe, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	plugin := start("-c", "sleep 60; true")
	sup := start("-c", "sleep 60; true", "__supervise")
	c := &Cluster{Bus: NewBus("node-a", "node-b")}
	t.Cleanup(c.Bus.Close)
	c.Nodes = []*Node{{ID: "node-a", Executable: exe, cluster: c}, {ID: "node-b", Executable: "/nonexistent", cluster: c}}
	var clis map[string][]CLIProc
	waitFor(t, 5*time.Second, "the stand-in CLI", func() bool { clis = c.CLIProcesses(); return len(clis["node-a"]) == 1 })
	if p := clis["node-a"][0]; p.Supervisor != sup.Process.Pid || !strings.HasPrefix(p.Cmdline, "sleep 60") {
		t.Errorf("CLI %+v, want sleep under supervisor %d", p, sup.Process.Pid)
	}
	if len(clis["node-b"]) != 0 {
		t.Errorf("node-b has CLIs %v", clis["node-b"])
	}
	if got := c.Node("node-a").PluginPID(); got != plugin.Process.Pid {
		t.Fatalf("PluginPID %d, want %d (not the supervisor %d)", got, plugin.Process.Pid, sup.Process.Pid)
	}
	if err := c.Pause("node-a"); err != nil {
		t.Fatal(err)
	}
	if st, _ := ProcStatus(plugin.Process.Pid, "State"); !strings.HasPrefix(st, "T") {
		t.Errorf("paused plugin state %q", st)
	}
	if st, _ := ProcStatus(sup.Process.Pid, "State"); strings.HasPrefix(st, "T") {
		t.Errorf("Pause stopped the supervisor too (state %q)", st)
	}
	if err := c.Resume("node-a"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "resumed", func() bool {
		st, _ := ProcStatus(plugin.Process.Pid, "State")
		return !strings.HasPrefix(st, "T")
	})
	go func() { _ = plugin.Wait() }() // reap it, as go-plugin does
	if err := c.Kill9("node-a"); err != nil {
		t.Fatal(err)
	}
	if c.Node("node-a").PluginPID() != 0 {
		t.Error("plugin still there after Kill9")
	}
	if err := c.Kill9("node-a"); err == nil {
		t.Error("Kill9 of a dead plugin succeeded")
	}
	w := c.WatchCLIs(10*time.Millisecond, nil)
	time.Sleep(100 * time.Millisecond)
	res := w.Stop()
	if res.Samples < 3 || res.Most != 1 || fmt.Sprint(res.Nodes) != "[node-a]" || len(res.Over) != 0 {
		t.Errorf("watch %+v, want one CLI under node-a in every sample", res)
	}
}
