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
// one. The only KV traffic a session may add at idle is its lease's renewal: one
// compare-and-set every RENEW = LEASE/3 (2 s with LEASE 6 s: 30 a minute, ±20%). A plain server
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
	leaseKey := "lease_" + s.id
	var renewals, leaseOther, other int
	var otherDesc []string
	for _, c := range one {
		switch {
		case c.Key() == leaseKey && c.Method == "KVCompareAndSet":
			renewals++
		case c.Key() == leaseKey:
			leaseOther++
		default:
			other++
			if len(otherDesc) < 10 {
				otherDesc = append(otherDesc, c.Method+" "+c.Key())
			}
		}
	}
	fmt.Printf("cluster-bench: plain server idle KV calls per minute: %.1f (0 sessions) / %.1f (1 session; lease renewals %.1f, other %.1f), lease %d s, idle windows of %v\n",
		perMin(len(none)), perMin(len(one)), perMin(renewals), perMin(other), leaseSecs, idle)
	t.Logf("KV calls at idle without a session: %s", describeCalls(none))

	if n := len(w.c.CallsBy(node, time.Time{}, "PublishPluginClusterEvent")); n != 0 {
		t.Errorf("a plain server's plugin published %d cluster event(s)", n)
	}
	if len(none) != 0 {
		t.Errorf("without a session the plugin made %d KV calls in %v of idling (%s), want none", len(none), idle, describeCalls(none))
	}
	// Renewals only: what the session adds is its lease's compare-and-set.
	if extra := other - len(none); extra > 0 {
		t.Errorf("with one idle session the plugin made %d KV calls that are not its lease's renewal (%v), want none beyond the session-less idle", other, otherDesc)
	}
	if leaseOther != 0 {
		t.Errorf("%d KV calls on %s other than KVCompareAndSet while idle (a renewal is one CAS)", leaseOther, leaseKey)
	}
	want := 60.0 / (float64(leaseSecs) / 3) // one renewal per RENEW = LEASE/3
	if got := perMin(renewals); got < 0.8*want || got > 1.2*want {
		t.Errorf("lease renewals of the idle session: %.1f a minute, want %.0f ±20%% (LEASE %d s, RENEW = LEASE/3)", got, want, leaseSecs)
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
