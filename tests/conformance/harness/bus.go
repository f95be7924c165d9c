package harness

import (
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// The simulated cluster's event bus: what a Mattermost cluster does with a plugin's
// PublishPluginClusterEvent (app.PluginAPI.PublishPluginClusterEvent →
// Cluster.SendClusterMessage / SendClusterMessageToNode → the other node's
// clusterPluginEventHandler → hooks.OnPluginClusterEvent).
//
// How the real cluster delivers, and what the bus copies of it:
//   - TargetId "" goes to every OTHER node, a TargetId to that node only; the sender never
//     gets its own event. An unknown target is an error of the publish call
//     ("failed to send message to cluster node %q: ...", as PluginAPI wraps it).
//   - The cluster transport (enterprise, on hashicorp/memberlist) sends "reliable" events on a
//     stream connection (memberlist SendReliable: TCP, retried by the caller) and
//     "best_effort" ones as gossip datagrams (SendBestEffort: UDP, may be lost or overtaken).
//   - memberlist opens one stream per reliable message and the receiver handles each in its
//     own goroutine, so the transport itself does not promise order even between two nodes;
//     in practice a sender that publishes one event after another sees them arrive in order.
//     The bus therefore delivers reliable events of one sender→receiver pair in order by
//     default (FIFO per pair, every event delivered), lets different pairs overtake each other
//     freely, and can be told to reorder reliable events within a pair too
//     (BusFaults.ReorderReliable) for a plugin that must not rely on that order.
//   - The receiving server calls the hook; a node whose plugin is not active drops the event
//     ("Getting hooks for plugin failed"); a node whose plugin process died still calls the
//     hook, which fails (the event is lost). The bus hands each event to the receiver's
//     hook and moves on to the next of the pair once the hook returned or BusHandoff passed,
//     so a hook that blocks (a paused plugin, a slow handler) delays but never stops the
//     pair, as the real server's goroutine per message would not.
//   - A partition cuts a node off the bus: its reliable events, both ways, are held and
//     delivered in order when it heals (a reliable send that keeps retrying); best_effort
//     events to or from it are lost.

// BusHandoff is how long the bus waits for one hook call before handing the pair's next
// event over (see above).
const BusHandoff = 50 * time.Millisecond

// BusFaults are the faults the bus injects; SetFaults changes them at run time (events already
// in flight keep the delay they were given).
type BusFaults struct {
	Delay  time.Duration // every event is in flight this long
	Jitter time.Duration // plus a uniform random extra in [0, Jitter)
	// DropBestEffort is the probability (0..1) that a best_effort event is lost. Reliable
	// events are never dropped.
	DropBestEffort float64
	// Reorder lets best_effort events of one pair overtake each other (each is delivered
	// after its own delay, not after the one before it).
	Reorder bool
	// ReorderReliable does the same for reliable events (see the note on memberlist above).
	ReorderReliable bool
}

// BusEvent is one event on the bus, for one receiver.
type BusEvent struct {
	Seq         uint64
	From, To    string
	Event       model.PluginClusterEvent
	SendType    string
	SentAt      time.Time
	DeliveredAt time.Time // when it was handed to the receiver's hook; zero if not (yet)
	Dropped     string    // why it was lost, if it was
	due         time.Time
}

func (e *BusEvent) reliable() bool { return e.SendType == model.PluginClusterEventSendTypeReliable }

// Receiver takes one event on a node: the node's OnPluginClusterEvent. An error means the
// event was lost there (the plugin is not active).
type Receiver func(ev model.PluginClusterEvent) error

// Bus carries plugin cluster events between the nodes of a simulated cluster.
type Bus struct {
	mu        sync.Mutex
	nodes     []string
	receivers map[string]Receiver
	faults    BusFaults
	cut       map[string]bool
	wake      chan struct{} // closed and replaced whenever faults, partitions or queues change
	pairs     map[[2]string]*busPair
	events    []*BusEvent
	rng       *rand.Rand
	seq       uint64
	closed    bool
	wg        sync.WaitGroup
}

type busPair struct {
	queue   []*BusEvent
	lastDue time.Time
	running bool
}

// NewBus returns a bus between the named nodes (nothing is delivered to a node until Attach).
func NewBus(nodes ...string) *Bus {
	return &Bus{
		nodes:     append([]string(nil), nodes...),
		receivers: map[string]Receiver{},
		cut:       map[string]bool{},
		wake:      make(chan struct{}),
		pairs:     map[[2]string]*busPair{},
		rng:       rand.New(rand.NewSource(time.Now().UnixNano())),
	}
}

// Attach sets the receiver of a node's events.
func (b *Bus) Attach(node string, r Receiver) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.receivers[node] = r
	b.wakeLocked()
}

func (b *Bus) wakeLocked() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// SetFaults replaces the faults.
func (b *Bus) SetFaults(f BusFaults) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.faults = f
	b.wakeLocked()
}

// Partition cuts a node off the bus until Heal.
func (b *Bus) Partition(node string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cut[node] = true
	b.wakeLocked()
}

// Heal reconnects a node; its held reliable events are delivered.
func (b *Bus) Heal(node string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.cut, node)
	b.wakeLocked()
}

// Close stops delivering (events still in flight are not delivered) and waits up to 10 s for
// the hook calls under way.
func (b *Bus) Close() {
	b.mu.Lock()
	b.closed = true
	b.wakeLocked()
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// Events returns every event published so far, one per receiver, in publish order (copies).
func (b *Bus) Events() []BusEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]BusEvent, 0, len(b.events))
	for _, e := range b.events {
		out = append(out, *e)
	}
	return out
}

// Publish sends ev from node `from` as PluginAPI.PublishPluginClusterEvent would.
func (b *Bus) Publish(from string, ev model.PluginClusterEvent, opts model.PluginClusterEventSendOptions) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var targets []string
	switch {
	case opts.TargetId == "":
		for _, n := range b.nodes {
			if n != from {
				targets = append(targets, n)
			}
		}
	case opts.TargetId == from || !slices.Contains(b.nodes, opts.TargetId):
		return fmt.Errorf("failed to send message to cluster node %q: no such other node in the cluster", opts.TargetId)
	default:
		targets = []string{opts.TargetId}
	}
	now := time.Now()
	for _, to := range targets {
		b.seq++
		e := &BusEvent{Seq: b.seq, From: from, To: to, SendType: opts.SendType, SentAt: now,
			Event: model.PluginClusterEvent{Id: ev.Id, Data: append([]byte(nil), ev.Data...)}}
		b.events = append(b.events, e)
		if b.closed {
			e.Dropped = "bus closed"
			continue
		}
		if !e.reliable() && (b.cut[from] || b.cut[to]) {
			e.Dropped = "best_effort event across a partition"
			continue
		}
		if !e.reliable() && b.faults.DropBestEffort > 0 && b.rng.Float64() < b.faults.DropBestEffort {
			e.Dropped = "best_effort event dropped (fault)"
			continue
		}
		e.due = now.Add(b.faults.Delay)
		if b.faults.Jitter > 0 {
			e.due = e.due.Add(time.Duration(b.rng.Int63n(int64(b.faults.Jitter))))
		}
		unordered := (e.reliable() && b.faults.ReorderReliable) || (!e.reliable() && b.faults.Reorder)
		if unordered {
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				if b.await(e) {
					b.deliver(e, false)
				}
			}()
			continue
		}
		key := [2]string{from, to}
		p := b.pairs[key]
		if p == nil {
			p = &busPair{}
			b.pairs[key] = p
		}
		if e.due.Before(p.lastDue) {
			e.due = p.lastDue
		}
		p.lastDue = e.due
		p.queue = append(p.queue, e)
		if !p.running {
			p.running = true
			b.wg.Add(1)
			go b.runPair(p)
		}
	}
	b.wakeLocked()
	return nil
}

// runPair delivers one pair's ordered events, one after the other.
func (b *Bus) runPair(p *busPair) {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		if len(p.queue) == 0 || b.closed {
			p.running = false
			b.mu.Unlock()
			return
		}
		e := p.queue[0]
		p.queue = p.queue[1:]
		b.mu.Unlock()
		if b.await(e) {
			b.deliver(e, true)
		}
	}
}

// await waits until e is due and neither end is cut off (a best_effort event meeting a
// partition is lost). False: the event is not to be delivered.
func (b *Bus) await(e *BusEvent) bool {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return false
		}
		wake := b.wake
		wait := time.Until(e.due)
		cut := b.cut[e.From] || b.cut[e.To]
		if wait <= 0 && cut && !e.reliable() {
			e.Dropped = "best_effort event across a partition"
			b.mu.Unlock()
			return false
		}
		b.mu.Unlock()
		if wait <= 0 && !cut {
			return true
		}
		if wait <= 0 {
			<-wake
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// deliver hands e to its receiver; ordered, it waits for the hook to return or BusHandoff.
func (b *Bus) deliver(e *BusEvent, ordered bool) {
	b.mu.Lock()
	r := b.receivers[e.To]
	e.DeliveredAt = time.Now()
	if r == nil {
		e.Dropped = "no receiver attached"
	}
	ev := model.PluginClusterEvent{Id: e.Event.Id, Data: append([]byte(nil), e.Event.Data...)}
	b.mu.Unlock()
	if r == nil {
		return
	}
	done := make(chan struct{})
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(done)
		if err := r(ev); err != nil {
			b.mu.Lock()
			e.Dropped = err.Error()
			b.mu.Unlock()
		}
	}()
	if ordered {
		select {
		case <-done:
		case <-time.After(BusHandoff):
		}
	}
}
