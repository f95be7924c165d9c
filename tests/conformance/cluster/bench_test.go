package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"claudecode/conformance/harness"
	"claudecode/conformance/steps"
)

// Leases and forwarding under load: sessions spread over 3 nodes (started on random nodes),
// prompts through random nodes for CLUSTER_BENCH_SECONDS (one at a time per session, the next
// once the previous is answered; the fake model answers at once). Every prompt is answered
// exactly once in its thread; the added latency of a forwarded /claude call (the hook call
// through a node that does not own the session) is reported against a direct one.
func TestClusterLoadBench(t *testing.T) {
	load(t, envInt("CLUSTER_BENCH_SESSIONS", 20), envSeconds("CLUSTER_BENCH_SECONDS", 120), nil)
}

// The same load with the cluster bus misbehaving as a real one may: every event 20 to 70 ms in
// flight, and reliable events overtaking each other within a pair (memberlist sends each over
// a connection of its own). Every prompt is still answered exactly once; nothing is measured.
func TestClusterLoadUnderBusFaults(t *testing.T) {
	load(t, 6, envSeconds("CLUSTER_FAULTS_SECONDS", 20), &harness.BusFaults{
		Delay:           20 * time.Millisecond,
		Jitter:          50 * time.Millisecond,
		ReorderReliable: true,
	})
}

// load prompts n sessions through random nodes for run (see TestClusterLoadBench), with
// faults on the bus if any (then the latency line is not printed: it would measure the faults).
func load(t *testing.T, n int, run time.Duration, faults *harness.BusFaults) {
	w := newWorld(t, 3, false)
	const lostAfter = 60 * time.Second
	w.activate(t)
	if faults != nil {
		w.c.Bus.SetFaults(*faults)
	}
	// An empty script: every model request gets the fake's fixed answer at once.
	if err := w.model.Start("bench", nil); err != nil {
		t.Fatal(err)
	}
	nodes := harness.NodeIDs(3)
	sessions := make([]*session, n)
	for i := range sessions {
		sessions[i] = w.start(t, nodes[rand.IntN(len(nodes))], fmt.Sprintf("bench%02d", i))
	}
	watch := w.c.WatchCLIs(200*time.Millisecond, nil)

	type stats struct {
		mu                  sync.Mutex
		direct, forwarded   []time.Duration
		sent, lost          int
		unknownOwner, errs  int
		refused             int
		firstErr            string
		firstRefusal        string
		perSession          map[string]int
		startedAt, stopping time.Time
	}
	st := &stats{perSession: map[string]int{}, startedAt: time.Now()}
	stopAt := st.startedAt.Add(run)
	var wg sync.WaitGroup
	for i, s := range sessions {
		before := w.postIDs(s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; time.Now().Before(stopAt); k++ {
				node := nodes[rand.IntN(len(nodes))]
				l, ok := w.lease(s)
				began := time.Now()
				r, err := w.command(t, node, s, fmt.Sprintf("/claude Bench prompt BENCH-%02d-%03d", i, k))
				took := time.Since(began)
				st.mu.Lock()
				st.sent++
				st.perSession[s.id]++
				switch {
				case err != nil:
					st.errs++
					if st.firstErr == "" {
						st.firstErr = err.Error()
					}
				case !ok:
					st.unknownOwner++
				case l.Node == node:
					st.direct = append(st.direct, took)
				default:
					st.forwarded = append(st.forwarded, took)
				}
				want := st.perSession[s.id]
				refused := err == nil && refusal(r.Reply)
				if refused {
					st.refused++
					if st.firstRefusal == "" {
						st.firstRefusal = fmt.Sprintf("through %s (owner %s): %q", node, l.Node, r.Reply)
					}
				}
				st.mu.Unlock()
				if refused {
					return // never answered: this session's count is off from here on
				}
				if !steps.Poll(lostAfter, func() bool { return len(w.doneReplies(s, before)) >= want }) {
					st.mu.Lock()
					st.lost++
					st.mu.Unlock()
					return // this session's count is off from here on: stop prompting it
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(3 * time.Second) // a duplicate answer would land now
	res := watch.Stop()

	dups, missing := 0, 0
	for _, s := range sessions {
		got := len(w.doneReplies(s, nil))
		want := st.perSession[s.id]
		if got > want {
			dups += got - want
			t.Errorf("session %s (%s): %d answers to %d prompts (duplicated)", s.name, s.id, got, want)
		} else if got < want {
			missing += want - got
		}
	}
	p50 := func(d []time.Duration) float64 {
		if len(d) == 0 {
			return -1
		}
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[len(s)/2].Microseconds()) / 1000
	}
	fwd, dir := p50(st.forwarded), p50(st.direct)
	if faults != nil {
		t.Logf("bus faults: %+v", *faults)
	} else if fwd >= 0 && dir >= 0 {
		fmt.Printf("cluster-bench: forwarded call added latency p50 %.1f ms (direct p50 %.1f ms), %d prompts\n", fwd-dir, dir, st.sent)
	} else {
		fmt.Printf("cluster-bench: forwarded call added latency p50 n/a (%d forwarded, %d direct calls measured), %d prompts\n", len(st.forwarded), len(st.direct), st.sent)
	}
	t.Logf("%d sessions, %v: %d prompts (%d direct, %d forwarded, %d with no lease to tell the owner), %d errors (%s), %d lost (no answer within %v), %d missing and %d duplicated answers; forwarded p50 %.1f ms; at most %d CLIs at once",
		n, run, st.sent, len(st.direct), len(st.forwarded), st.unknownOwner, st.errs, st.firstErr, st.lost, lostAfter, missing, dups, fwd, res.Most)
	if st.errs > 0 {
		t.Errorf("%d prompt commands failed: %s", st.errs, st.firstErr)
	}
	if st.refused > 0 {
		t.Errorf("%d prompts were refused, the first %s", st.refused, st.firstRefusal)
	}
	if st.lost > 0 || missing > 0 {
		t.Errorf("%d prompts got no answer in their thread within %v (%d answers missing in all)", st.lost, lostAfter, missing)
	}
	if st.unknownOwner > 0 {
		t.Errorf("%d prompts were sent while the session had no lease record in KV (lease_<id>)", st.unknownOwner)
	}
	if len(st.forwarded) == 0 {
		t.Errorf("no prompt went through a node other than the session's owner: forwarding was not measured")
	}
	if res.Most > n {
		t.Errorf("at one moment %d CLIs ran for %d sessions", res.Most, n)
	}
}
