// Command pluginbench loads the Rust plugin (dist tarball) and the Go reference plugin
// (tests/conformance/refplugin) in one process with Mattermost's real host code and
// compares them: /claude help round trip, ServeHTTP upload/download throughput, cold start
// (env.Activate wall time) and idle RSS. Both stay loaded, each in its own host, and take
// turns call by call and batch by batch, so a busy moment of the machine hits both alike. It always exits 0 and prints MISSED for a target
// the Rust plugin does not meet.
//
//	go run ./cmd/pluginbench [-rust dist/claude-code-<v>.tar.gz] [-calls 5000]
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"claudecode/conformance/harness"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

type result struct {
	p50, p99         time.Duration
	upload, download float64 // bytes/s
	// CPU seconds per MiB moved during the transfers: the plugin process, and this (host) process.
	uploadCPU, downloadCPU cpuPerMiB
	coldStart              time.Duration
	idleRSSKiB             int64
	err                    error
}

type bench struct {
	calls, warmup, transfers, coldRuns int
}

func defaultRustTarball() string {
	b, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "plugin.json"))
	if err != nil {
		return ""
	}
	var m struct{ Version string }
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	return filepath.Join(harness.RepoRoot(), "dist", fmt.Sprintf("%s-%s.tar.gz", harness.PluginID, m.Version))
}

func main() {
	b := bench{}
	rust := flag.String("rust", "", "Rust plugin tarball (default $CLAUDE_CODE_TARBALL, else dist/claude-code-<version>.tar.gz)")
	flag.IntVar(&b.calls, "calls", 5000, "timed sequential ExecuteCommand calls")
	flag.IntVar(&b.warmup, "warmup", 500, "warm-up ExecuteCommand calls")
	flag.IntVar(&b.transfers, "transfers", 100, "1 MiB uploads and downloads each")
	flag.IntVar(&b.coldRuns, "cold", 5, "cold starts (median reported)")
	flag.Parse()
	if *rust == "" {
		*rust = os.Getenv("CLAUDE_CODE_TARBALL")
	}
	if *rust == "" {
		*rust = defaultRustTarball()
	}

	tmp, err := os.MkdirTemp("", "pluginbench-")
	if err != nil {
		fmt.Println("pluginbench:", err)
		return
	}
	defer os.RemoveAll(tmp)

	goTar, err := harness.BuildRefTarball(tmp)
	if err != nil {
		fmt.Println("pluginbench: building the Go reference plugin:", err)
		return
	}
	haveRust := false
	if st, err := os.Stat(*rust); err == nil && !st.IsDir() {
		haveRust = true
	} else {
		fmt.Printf("pluginbench: Rust tarball %s does not exist (run `make dist`); measuring the Go reference only\n", *rust)
	}

	fmt.Printf("pluginbench: %d calls (+%d warm-up), %d x 1 MiB transfers, %d cold starts\n", b.calls, b.warmup, b.transfers, b.coldRuns)
	subjects := []*subject{b.setup("go", goTar, filepath.Join(tmp, "go"))}
	if haveRust {
		subjects = append(subjects, b.setup("rust", *rust, filepath.Join(tmp, "rust")))
	}
	for _, s := range subjects {
		defer s.close()
	}
	b.measure(subjects)
	var rustRes *result
	if haveRust {
		rustRes = &subjects[1].res
	}
	report(subjects[0].res, rustRes)
}

// subject is one plugin under measurement, loaded in a host of its own.
type subject struct {
	name   string
	h      *harness.Host
	logger interface{ Shutdown() error }
	hooks  plugin.Hooks
	pid    int
	res    result
}

func (s *subject) close() {
	if s.h != nil {
		s.h.Env.Shutdown()
	}
	if s.logger != nil {
		_ = s.logger.Shutdown()
	}
}

// setup loads a plugin and measures what is measured one plugin at a time: cold start and
// idle RSS.
func (b bench) setup(name, tgz, dir string) *subject {
	s := &subject{name: name}
	logger, _ := harness.NewLogger(io.Discard) // the plugins' logs are dropped
	s.logger = logger
	h, err := harness.NewHost(tgz, dir, logger)
	if err != nil {
		s.res.err = err
		return s
	}
	s.h = h
	// Thousands of commands from one user: measure the hook, not the per-user limit.
	h.API.SetConfig(map[string]any{"CommandsPerMinute": 0, "DataDirectory": filepath.Join(dir, "data")})
	// The caller must be a channel member, as on a real server.
	h.API.AddUser(&model.User{Id: "u1", Username: "alice", Roles: "system_user"})
	h.API.AddChannel(&model.Channel{Id: "c1", TeamId: "t1", Type: model.ChannelTypeOpen, Name: "town-square"})
	h.API.AddMember("c1", "u1", model.PermissionCreatePost.Id, model.PermissionReadChannel.Id)

	// Cold start: exec -> handshake -> Implemented -> OnActivate reply.
	var colds []time.Duration
	for i := 0; i < b.coldRuns; i++ {
		start := time.Now()
		_, ok, err := h.Env.Activate(harness.PluginID)
		d := time.Since(start)
		if err != nil || !ok {
			s.res.err = fmt.Errorf("%s: Activate: %v (activated=%v)", name, err, ok)
			return s
		}
		colds = append(colds, d)
		if i < b.coldRuns-1 {
			h.Env.Deactivate(harness.PluginID)
			waitNoProcess(h)
		}
	}
	sort.Slice(colds, func(i, j int) bool { return colds[i] < colds[j] })
	s.res.coldStart = colds[len(colds)/2]

	if s.hooks, err = h.Env.HooksForPlugin(harness.PluginID); err != nil {
		s.res.err = err
		return s
	}
	time.Sleep(time.Second)
	if pids := h.PluginPIDs(); len(pids) == 1 {
		s.pid = pids[0]
		s.res.idleRSSKiB, _ = harness.ProcKiB(s.pid, "VmRSS")
	} else {
		fmt.Printf("pluginbench: %s: %d plugin processes, the plugin's RSS and CPU are not measured\n", name, len(pids))
	}
	return s
}

var helpArgs = &model.CommandArgs{Command: "/claude help", UserId: "u1", ChannelId: "c1", TeamId: "t1"}

func (s *subject) help() (time.Duration, error) {
	start := time.Now()
	r, appErr := s.hooks.ExecuteCommand(&plugin.Context{}, helpArgs)
	d := time.Since(start)
	if appErr != nil || r == nil || !strings.Contains(r.Text, "/claude start") {
		return d, fmt.Errorf("%s: /claude help answered %v %v", s.name, r, appErr)
	}
	return d, nil
}

func (s *subject) serve(method, target string, body []byte) *httptest.ResponseRecorder {
	var req = httptest.NewRequest(method, target, nil)
	if body != nil {
		req = httptest.NewRequest(method, target, bytes.NewReader(body))
	}
	req.Header.Set("Mattermost-User-Id", "u1")
	rec := httptest.NewRecorder()
	s.hooks.ServeHTTP(&plugin.Context{RequestId: "bench"}, rec, req)
	return rec
}

// transfer moves n MiB up (echo) or down and returns the time and the CPU it took.
func (s *subject) transfer(up bool, n int, body []byte) (time.Duration, cpuPerMiB, error) {
	cpu0 := sampleCPU(s.pid)
	start := time.Now()
	for i := 0; i < n; i++ {
		var rec *httptest.ResponseRecorder
		if up {
			rec = s.serve("POST", "/api/v1/diag/echo", body)
		} else {
			rec = s.serve("GET", "/api/v1/diag/download?bytes=1048576", nil)
		}
		if rec.Code != 200 || rec.Body.Len() != 1<<20 {
			return 0, cpuPerMiB{}, fmt.Errorf("%s: transfer (up=%v) answered %d with %d bytes", s.name, up, rec.Code, rec.Body.Len())
		}
	}
	d := time.Since(start)
	return d, sampleCPU(s.pid).total(cpu0), nil
}

// measure runs the latency and throughput measurements with the plugins taking turns, call
// by call and batch by batch, so both meet the same machine: a busy moment hits both.
func (b bench) measure(subjects []*subject) {
	live := subjects[:0:0]
	for _, s := range subjects {
		if s.res.err == nil {
			live = append(live, s)
		}
	}
	// Turn i starts with a different plugin each time.
	turns := func(i int, f func(s *subject) error) {
		for k := range live {
			s := live[(i+k)%len(live)]
			if s.res.err == nil {
				s.res.err = f(s)
			}
		}
	}
	for i := 0; i < b.warmup; i++ {
		turns(i, func(s *subject) error { _, err := s.help(); return err })
	}
	lat := map[*subject][]time.Duration{}
	for i := 0; i < b.calls; i++ {
		turns(i, func(s *subject) error {
			d, err := s.help()
			lat[s] = append(lat[s], d)
			return err
		})
	}
	for _, s := range live {
		l := lat[s]
		if len(l) == 0 {
			continue
		}
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		s.res.p50 = l[len(l)/2]
		s.res.p99 = l[len(l)*99/100]
	}

	body := make([]byte, 1<<20)
	rand.Read(body)
	// One untimed transfer of each kind, then batches in turns.
	turns(0, func(s *subject) error {
		if _, _, err := s.transfer(true, 1, body); err != nil {
			return err
		}
		_, _, err := s.transfer(false, 1, body)
		return err
	})
	const rounds = 5
	type sums struct {
		up, down       time.Duration
		upCPU, downCPU cpuPerMiB
		n              int
	}
	total := map[*subject]*sums{}
	for _, s := range live {
		total[s] = &sums{}
	}
	for r := 0; r < rounds; r++ {
		n := b.transfers / rounds
		if r < b.transfers%rounds {
			n++
		}
		turns(r, func(s *subject) error {
			t := total[s]
			d, cpu, err := s.transfer(true, n, body)
			if err != nil {
				return err
			}
			t.up, t.upCPU = t.up+d, t.upCPU.add(cpu)
			if d, cpu, err = s.transfer(false, n, body); err != nil {
				return err
			}
			t.down, t.downCPU, t.n = t.down+d, t.downCPU.add(cpu), t.n+n
			return nil
		})
	}
	for _, s := range live {
		t := total[s]
		if t.n == 0 || t.up == 0 || t.down == 0 {
			continue
		}
		s.res.upload = float64(t.n<<20) / t.up.Seconds()
		s.res.download = float64(t.n<<20) / t.down.Seconds()
		s.res.uploadCPU, s.res.downloadCPU = t.upCPU.per(t.n), t.downCPU.per(t.n)
	}
}

func waitNoProcess(h *harness.Host) {
	deadline := time.Now().Add(5 * time.Second)
	for len(h.PluginPIDs()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

type cpuSample struct{ plugin, host time.Duration }

type cpuPerMiB struct{ plugin, host time.Duration }

// sampleCPU reads user+system CPU time of the plugin process (/proc/<pid>/stat) and of this one.
func sampleCPU(pid int) cpuSample {
	var s cpuSample
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the parenthesised command name; utime and stime are the 14th and 15th.
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 13 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				s.plugin = time.Duration(ut+st) * (time.Second / 100) // USER_HZ
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.host = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// total is the CPU spent since before (a sum, until per divides it).
func (s cpuSample) total(before cpuSample) cpuPerMiB {
	return cpuPerMiB{s.plugin - before.plugin, s.host - before.host}
}

func (c cpuPerMiB) add(o cpuPerMiB) cpuPerMiB { return cpuPerMiB{c.plugin + o.plugin, c.host + o.host} }

func (c cpuPerMiB) per(mibs int) cpuPerMiB {
	return cpuPerMiB{c.plugin / time.Duration(mibs), c.host / time.Duration(mibs)}
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f us", float64(d.Nanoseconds())/1e3) }
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Nanoseconds())/1e6) }
func mibs(v float64) string     { return fmt.Sprintf("%.1f MiB/s", v/(1<<20)) }
func mib(kib int64) string      { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func report(g result, r *result) {
	if g.err != nil {
		fmt.Println("pluginbench: Go reference failed:", g.err)
		return
	}
	type row struct {
		name         string
		goV, rustV   string
		ratio        float64 // rust / go
		target       string
		ok           func(ratio float64) bool
		rustMeasured bool
	}
	le1 := func(x float64) bool { return x <= 1 }
	ge1 := func(x float64) bool { return x >= 1 }
	le3 := func(x float64) bool { return x <= 1.0/3 }
	rows := []row{
		{name: "/claude help p50", goV: us(g.p50), target: "<= Go", ok: le1},
		{name: "/claude help p99", goV: us(g.p99), target: "<= Go", ok: le1},
		{name: "upload 1 MiB (echo)", goV: mibs(g.upload), target: ">= Go", ok: ge1},
		{name: "download 1 MiB", goV: mibs(g.download), target: ">= Go", ok: ge1},
		{name: "cold start (median)", goV: ms(g.coldStart), target: "<= Go", ok: le1},
		{name: "idle RSS", goV: mib(g.idleRSSKiB), target: "<= Go/3", ok: le3},
	}
	rustOK := r != nil && r.err == nil
	if r != nil && r.err != nil {
		fmt.Println("pluginbench: Rust plugin failed:", r.err)
	}
	if rustOK {
		vals := []struct {
			s string
			x float64
		}{
			{us(r.p50), float64(r.p50) / float64(g.p50)},
			{us(r.p99), float64(r.p99) / float64(g.p99)},
			{mibs(r.upload), r.upload / g.upload},
			{mibs(r.download), r.download / g.download},
			{ms(r.coldStart), float64(r.coldStart) / float64(g.coldStart)},
			{mib(r.idleRSSKiB), float64(r.idleRSSKiB) / float64(g.idleRSSKiB)},
		}
		for i := range rows {
			rows[i].rustV, rows[i].ratio, rows[i].rustMeasured = vals[i].s, vals[i].x, true
		}
	}
	fmt.Printf("\n%-22s %14s %14s %10s %9s  %s\n", "metric", "Go", "Rust", "Rust/Go", "target", "status")
	missed := 0
	for _, rw := range rows {
		rustV, ratio, status := "-", "-", "not measured"
		if rw.rustMeasured {
			rustV, ratio = rw.rustV, fmt.Sprintf("%.2f", rw.ratio)
			status = "ok"
			if !rw.ok(rw.ratio) {
				status = "MISSED"
				missed++
			}
		}
		fmt.Printf("%-22s %14s %14s %10s %9s  %s\n", rw.name, rw.goV, rustV, ratio, rw.target, status)
	}
	fmt.Printf("\nCPU per MiB moved (plugin process / host process):\n")
	fmt.Printf("  upload   Go %s / %s", ms(g.uploadCPU.plugin), ms(g.uploadCPU.host))
	if rustOK {
		fmt.Printf("   Rust %s / %s", ms(r.uploadCPU.plugin), ms(r.uploadCPU.host))
	}
	fmt.Printf("\n  download Go %s / %s", ms(g.downloadCPU.plugin), ms(g.downloadCPU.host))
	if rustOK {
		fmt.Printf("   Rust %s / %s", ms(r.downloadCPU.plugin), ms(r.downloadCPU.host))
	}
	fmt.Println()
	if rustOK {
		fmt.Printf("\npluginbench: %d of %d targets met, %d MISSED\n", len(rows)-missed, len(rows), missed)
	} else {
		fmt.Println("\npluginbench: Go reference only; no Rust numbers")
	}
}
