package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

// Cluster is a simulated Mattermost cluster (a real one needs a licensed server): n nodes,
// each its own plugin.Environment running its own copy of the plugin process, all sharing
// ONE FakeAPI (KV store, posts, channels, users, files, websocket events, configuration, so
// one DataDirectory and one fake model for all), and a Bus that carries their plugin
// cluster events. Each node's plugin sees the shared fake through its own API: ClusterId is
// the node's id, PublishPluginClusterEvent goes on the bus, and every call is recorded with
// the node and the time (Calls).
//
// No health check job runs (Environment.TogglePluginHealthCheckJob is never enabled), so a
// plugin process that dies (Kill9) stays dead, as a node that crashed would.
type Cluster struct {
	API   *FakeAPI
	Bus   *Bus
	Nodes []*Node

	mu    sync.Mutex
	calls []APICall
	plain bool // NewPlainServer: not clustered
}

// Node is one simulated server of a Cluster.
type Node struct {
	ID         string // its ClusterId: node-a, node-b, ...
	Env        *plugin.Environment
	PluginDir  string
	BundleDir  string
	Executable string // this node's own copy of the plugin executable (absolute path)

	// Files is this node's own file storage directory (FileSettings.Directory in its
	// GetConfig), set by SeparateFileStorage; "" when the nodes share the fake's storage.
	Files string

	cluster *Cluster
	mu      sync.Mutex
	paused  int // the plugin pid Pause stopped, 0 if none
}

// APICall is one plugin API call a node's plugin made.
type APICall struct {
	Node   string
	Method string
	At     time.Time
	Args   []any // as the plugin passed them (not copies: read, never change)
}

// Key is the first argument when it is a string (the key of a KV call, the id of a
// GetPost), else "".
func (c APICall) Key() string {
	if len(c.Args) > 0 {
		if s, ok := c.Args[0].(string); ok {
			return s
		}
	}
	return ""
}

// Post is the first argument when it is a post (CreatePost, UpdatePost, ...), else nil.
func (c APICall) Post() *model.Post {
	if len(c.Args) > 0 {
		if p, ok := c.Args[0].(*model.Post); ok {
			return p
		}
	}
	return nil
}

// NodeIDs names n nodes node-a, node-b, ...
func NodeIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "node-" + string(rune('a'+i))
	}
	return ids
}

// NewCluster unpacks tarball once per node (under t.TempDir()/<node id>) and builds each
// node's Environment; nothing is activated yet (ActivateAll, or Node.Activate). Cleanup
// resumes paused plugins, stops the bus, shuts every environment down and kills the CLI
// processes still found under the nodes' supervisors.
func NewCluster(t testing.TB, n int, tarball string, logger *mlog.Logger) *Cluster {
	t.Helper()
	return newCluster(t, n, tarball, logger, false)
}

// NewPlainServer is one server that is NOT clustered, with the same records and process
// control as a Cluster's node: GetPluginStatus answers ClusterId "" and
// PublishPluginClusterEvent reaches nobody (the server returns nil without a cluster), both
// still recorded.
func NewPlainServer(t testing.TB, tarball string, logger *mlog.Logger) *Cluster {
	t.Helper()
	return newCluster(t, 1, tarball, logger, true)
}

func newCluster(t testing.TB, n int, tarball string, logger *mlog.Logger, plain bool) *Cluster {
	if n < 1 || n > 26 {
		t.Fatalf("NewCluster: %d nodes", n)
	}
	work, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ids := NodeIDs(n)
	c := &Cluster{Bus: NewBus(ids...), plain: plain}
	for _, id := range ids {
		b, err := unpackBundle(tarball, filepath.Join(work, id))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if c.API == nil {
			// The bundle path the shared fake answers is node-a's (GetBundlePath): each node's
			// plugin asks its own environment's copy only through the manifest, never through
			// the path, so one shared answer is enough.
			c.API = NewFakeAPI(b.BundleDir)
			c.API.SetPluginID(b.Manifest.Id)
		}
		node := &Node{ID: id, PluginDir: b.PluginDir, BundleDir: b.BundleDir, Executable: b.Executable, cluster: c}
		api := nodeAPI{RecordingAPI: RecordingAPI{API: c.API.ForPlugin(), Record: node.record}, node: node}
		if node.Env, err = plugin.NewEnvironment(func(*model.Manifest) plugin.API { return api }, nil, b.PluginDir, b.webappDir, logger, nil); err != nil {
			t.Fatal(err)
		}
		c.Bus.Attach(id, node.receive)
		c.Nodes = append(c.Nodes, node)
	}
	t.Cleanup(c.shutdown)
	return c
}

// SeparateFileStorage gives each node a file storage directory of its own (files/ next to its
// plugins/), as the hosts of a cluster that keeps its files in S3 have: with the plugin's
// DataDirectory setting empty, each node's plugin then uses a data directory of its own.
// Call it before activating.
func (c *Cluster) SeparateFileStorage() error {
	for _, n := range c.Nodes {
		n.Files = filepath.Join(filepath.Dir(n.PluginDir), "files")
		if err := os.MkdirAll(n.Files, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// Node returns the node with that id (nil if none).
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// ActivateAll activates the plugin on every node, one after the other.
func (c *Cluster) ActivateAll() error {
	for _, n := range c.Nodes {
		if err := n.Activate(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) shutdown() {
	for _, n := range c.Nodes {
		_ = n.Resume()
	}
	c.Bus.Close()
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.Env.Shutdown() }()
	}
	wg.Wait()
	// CLIs whose plugin could not stop them (a killed plugin's supervisor should, but the
	// test must not leave any behind whatever the plugin did).
	for _, procs := range c.CLIProcesses() {
		for _, p := range procs {
			_ = syscall.Kill(p.Pid, syscall.SIGKILL)
		}
	}
}

// Calls returns every recorded API call, oldest first.
func (c *Cluster) Calls() []APICall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]APICall(nil), c.calls...)
}

// CallsBy returns node's calls made at or after since, of the given methods (all if none).
func (c *Cluster) CallsBy(node string, since time.Time, methods ...string) []APICall {
	var out []APICall
	for _, call := range c.Calls() {
		if call.Node == node && !call.At.Before(since) && (len(methods) == 0 || slices.Contains(methods, call.Method)) {
			out = append(out, call)
		}
	}
	return out
}

// Activate activates the plugin in this node's environment.
func (n *Node) Activate() error {
	_, ok, err := n.Env.Activate(PluginID)
	if err != nil {
		return fmt.Errorf("%s: Activate: %w", n.ID, err)
	}
	if !ok {
		return fmt.Errorf("%s: Activate: not activated", n.ID)
	}
	return nil
}

// Restart deactivates the node's plugin (a dead process included, as the server does when its
// health check finds one) and activates it again: a node that comes back.
func (n *Node) Restart() error {
	if err := n.Env.RestartPlugin(PluginID); err != nil {
		return fmt.Errorf("%s: restart: %w", n.ID, err)
	}
	return nil
}

// Deactivate stops the node's plugin cleanly, as a server shutting down does; nothing starts it
// again until Activate.
func (n *Node) Deactivate() error {
	if !n.Env.Deactivate(PluginID) {
		return fmt.Errorf("%s: Deactivate: the plugin was not active", n.ID)
	}
	return nil
}

// Hooks are the node's plugin hooks, as its server calls them.
func (n *Node) Hooks() (plugin.Hooks, error) { return n.Env.HooksForPlugin(PluginID) }

func (n *Node) record(method string, args ...any) {
	c := n.cluster
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, APICall{Node: n.ID, Method: method, At: time.Now(), Args: args})
}

// receive is the node's side of the bus: what clusterPluginEventHandler does.
func (n *Node) receive(ev model.PluginClusterEvent) error {
	hooks, err := n.Hooks()
	if err != nil {
		return fmt.Errorf("Getting hooks for plugin failed: %w", err)
	}
	hooks.OnPluginClusterEvent(&plugin.Context{}, ev)
	return nil
}

// PluginPID is the pid of the node's live plugin process (not a CLI's supervisor, which
// runs the same executable), 0 if none runs.
func (n *Node) PluginPID() int {
	for _, pid := range PIDsOf(n.Executable) {
		if !IsSupervisor(pid) {
			return pid
		}
	}
	return 0
}

// Kill9 SIGKILLs the node's plugin process and waits until it is gone. Nothing restarts it.
func (n *Node) Kill9() error {
	pid := n.PluginPID()
	if pid == 0 {
		return fmt.Errorf("%s: no plugin process to kill", n.ID)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("%s: kill -9 %d: %w", n.ID, pid, err)
	}
	n.mu.Lock()
	if n.paused == pid {
		n.paused = 0
	}
	n.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for slices.Contains(PIDsOf(n.Executable), pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: plugin process %d still there 10 s after SIGKILL", n.ID, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Pause SIGSTOPs the node's plugin process (only it: its CLIs and their supervisors run on)
// and waits until the kernel shows it stopped.
func (n *Node) Pause() error {
	pid := n.PluginPID()
	if pid == 0 {
		return fmt.Errorf("%s: no plugin process to pause", n.ID)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("%s: SIGSTOP %d: %w", n.ID, pid, err)
	}
	n.mu.Lock()
	n.paused = pid
	n.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := ProcStatus(pid, "State")
		if err != nil || strings.HasPrefix(st, "T") {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: plugin process %d not stopped 5 s after SIGSTOP (state %s)", n.ID, pid, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Resume SIGCONTs the process Pause stopped (nothing if none).
func (n *Node) Resume() error {
	n.mu.Lock()
	pid := n.paused
	n.paused = 0
	n.mu.Unlock()
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: SIGCONT %d: %w", n.ID, pid, err)
	}
	return nil
}

// Kill9, Pause and Resume by node id.
func (c *Cluster) Kill9(node string) error  { return c.must(node).Kill9() }
func (c *Cluster) Pause(node string) error  { return c.must(node).Pause() }
func (c *Cluster) Resume(node string) error { return c.must(node).Resume() }

func (c *Cluster) must(id string) *Node {
	if n := c.Node(id); n != nil {
		return n
	}
	panic("no node " + id)
}

// CLIProc is one Claude Code CLI process: the direct child of a supervisor
// (`claude-code __supervise ...`, the node's plugin executable) of one node.
type CLIProc struct {
	Node       string
	Pid        int
	Supervisor int
	Cwd        string
	Cmdline    string // NULs as spaces
}

// CLIProcesses returns, for each node, the live CLI processes below its supervisors. A
// supervisor belongs to the node whose executable it runs (each node has its own copy), so a
// CLI is still counted for its node after the plugin process that started it died.
func (c *Cluster) CLIProcesses() map[string][]CLIProc {
	type proc struct {
		ppid int
		exe  string
	}
	procs := map[int]proc{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses, so cut at the last ')'.
		s := string(st)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		procs[pid] = proc{ppid: ppid, exe: exe}
	}
	out := map[string][]CLIProc{}
	for _, n := range c.Nodes {
		out[n.ID] = nil
	}
	for pid, p := range procs {
		parent, ok := procs[p.ppid]
		if !ok || !IsSupervisor(p.ppid) {
			continue
		}
		for _, n := range c.Nodes {
			if parent.exe == n.Executable {
				cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				out[n.ID] = append(out[n.ID], CLIProc{Node: n.ID, Pid: pid, Supervisor: p.ppid, Cwd: cwd,
					Cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))})
			}
		}
	}
	for id := range out {
		slices.SortFunc(out[id], func(a, b CLIProc) int { return a.Pid - b.Pid })
	}
	return out
}

// CLIWatch samples CLIProcesses in the background (see WatchCLIs).
type CLIWatch struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples int
	most    int
	over    []string // samples with more than one matching CLI, described
	seen    map[string]bool
}

// WatchCLIs samples every `every` the CLIs that match (all if match is nil) until Stop.
func (c *Cluster) WatchCLIs(every time.Duration, match func(CLIProc) bool) *CLIWatch {
	w := &CLIWatch{stop: make(chan struct{}), done: make(chan struct{}), seen: map[string]bool{}}
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			var hits []CLIProc
			for _, procs := range c.CLIProcesses() {
				for _, p := range procs {
					if match == nil || match(p) {
						hits = append(hits, p)
					}
				}
			}
			w.mu.Lock()
			w.samples++
			w.most = max(w.most, len(hits))
			for _, h := range hits {
				w.seen[h.Node] = true
			}
			if len(hits) > 1 && len(w.over) < 20 {
				var d []string
				for _, h := range hits {
					d = append(d, fmt.Sprintf("%s pid %d", h.Node, h.Pid))
				}
				w.over = append(w.over, time.Now().Format("15:04:05.000")+": "+strings.Join(d, ", "))
			}
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// CLIWatchResult is what a watch saw.
type CLIWatchResult struct {
	Samples int
	Most    int      // the most matching CLIs seen at one sample
	Over    []string // samples that saw more than one (the first 20)
	Nodes   []string // the nodes a matching CLI was ever seen under
}

// Stop ends the sampling and returns what it saw.
func (w *CLIWatch) Stop() CLIWatchResult {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	var nodes []string
	for n := range w.seen {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	return CLIWatchResult{Samples: w.samples, Most: w.most, Over: append([]string(nil), w.over...), Nodes: nodes}
}

// nodeAPI is the plugin API of one node: the shared fake, with the node's cluster id and bus,
// every call recorded.
type nodeAPI struct {
	RecordingAPI
	node *Node
}

// GetPluginStatus answers as a clustered server: ClusterId is this node's id (a plain
// server's is "").
func (a nodeAPI) GetPluginStatus(id string) (*model.PluginStatus, *model.AppError) {
	a.Record("GetPluginStatus", id)
	st, err := a.API.GetPluginStatus(id)
	if st != nil && !a.node.cluster.plain {
		st.ClusterId = a.node.ID
	}
	return st, err
}

// GetConfig answers the server's configuration with this node's own file storage directory
// (SeparateFileStorage); without one, the shared fake's answer.
func (a nodeAPI) GetConfig() *model.Config {
	if a.node.Files == "" {
		return a.RecordingAPI.GetConfig()
	}
	a.Record("GetConfig")
	cfg := &model.Config{}
	cfg.SetDefaults()
	dir := a.node.Files
	cfg.FileSettings.Directory = &dir
	return cfg
}

// PublishPluginClusterEvent is recorded in the shared fake (ClusterEvents, faults) and put on
// the bus.
func (a nodeAPI) PublishPluginClusterEvent(ev model.PluginClusterEvent, opts model.PluginClusterEventSendOptions) error {
	a.Record("PublishPluginClusterEvent", ev, opts)
	if err := a.API.PublishPluginClusterEvent(ev, opts); err != nil || a.node.cluster.plain {
		return err
	}
	return a.node.cluster.Bus.Publish(a.node.ID, ev, opts)
}
