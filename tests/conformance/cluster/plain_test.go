package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/harness"
)

var kvMethods = []string{"KVGet", "KVSet", "KVSetWithExpiry", "KVSetWithOptions", "KVCompareAndSet",
	"KVCompareAndDelete", "KVDelete", "KVDeleteAll", "KVList"}

// One plain (not clustered) server: KV calls per minute at idle, without a session and with
// one: none either way. A single server's lease is written when its session starts and never
// renewed (nobody else can take it), so an idle session costs no KV traffic. A plain server
// publishes no cluster event.
func TestPlainServerIdleKV(t *testing.T) {
	leaseSecs := envInt("CLUSTER_IDLE_LEASE_SECONDS", leaseSeconds)
	t.Setenv("MM_CLAUDE_CODE_LEASE_SECONDS", fmt.Sprint(leaseSecs))
	w := newWorld(t, 1, true)
	idle := envSeconds("CLUSTER_IDLE_SECONDS", 60)
	w.activate(t)
	node := w.c.Nodes[0].ID
	time.Sleep(2 * time.Second) // activation's own calls are not idle traffic

	from := time.Now()
	time.Sleep(idle)
	none := w.c.CallsBy(node, from, kvMethods...)

	if err := w.model.Start("idle", []map[string]any{fakemodel.TextTurn("Idle check answered.", 0)}); err != nil {
		t.Fatal(err)
	}
	s := w.start(t, node, "idle")
	before := w.postIDs(s)
	if _, err := w.command(t, node, s, "/claude Say something IDLE-PROMPT"); err != nil {
		t.Fatal(err)
	}
	if w.waitDone(t, s, before, turnTimeout, "the one prompt") == nil {
		t.FailNow()
	}
	time.Sleep(2 * time.Second)
	from = time.Now()
	time.Sleep(idle)
	one := w.c.CallsBy(node, from, kvMethods...)

	perMin := func(n int) float64 { return float64(n) / idle.Minutes() }
	fmt.Printf("cluster-bench: plain server idle KV calls per minute: %.1f (0 sessions) / %.1f (1 session), lease %d s, idle windows of %v\n",
		perMin(len(none)), perMin(len(one)), leaseSecs, idle)
	t.Logf("KV calls at idle without a session: %s; with one: %s", describeCalls(none), describeCalls(one))

	if n := len(w.c.CallsBy(node, time.Time{}, "PublishPluginClusterEvent")); n != 0 {
		t.Errorf("a plain server's plugin published %d cluster event(s)", n)
	}
	if len(none) != 0 {
		t.Errorf("without a session the plugin made %d KV calls in %v of idling (%s), want none", len(none), idle, describeCalls(none))
	}
	if len(one) != 0 {
		t.Errorf("with one idle session the plugin made %d KV calls in %v of idling (%s), want none", len(one), idle, describeCalls(one))
	}
	// The session was leased all the same: its lease was written once, at the start.
	if l, ok := w.lease(s); !ok || l.Fence < 1 {
		t.Errorf("the session's lease in KV is %+v (present %v), want one written at its start", l, ok)
	}
}

func describeCalls(calls []harness.APICall) string {
	count := map[string]int{}
	var order []string
	for _, c := range calls {
		k := c.Method + " " + c.Key()
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, count[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
