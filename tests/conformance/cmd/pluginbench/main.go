// Command pluginbench loads the Rust plugin (dist tarball) and the Go reference plugin
// (tests/conformance/refplugin) in one process with Mattermost's real host code and
// compares them: /claude help round trip, ServeHTTP upload/download throughput, cold start
// (env.Activate wall time) and idle RSS. It always exits 0 and prints MISSED for a target
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
	goRes := b.run("go", goTar, filepath.Join(tmp, "go"))
	var rustRes *result
	if haveRust {
		r := b.run("rust", *rust, filepath.Join(tmp, "rust"))
		rustRes = &r
	}
	report(goRes, rustRes)
}

func (b bench) run(name, tgz, dir string) result {
	logger, _ := harness.NewLogger(io.Discard) // the plugins' logs are dropped
	defer logger.Shutdown()
	h, err := harness.NewHost(tgz, dir, logger)
	if err != nil {
		return result{err: err}
	}
	// Thousands of commands from one user: measure the hook, not the per-user limit.
	h.API.SetConfig(map[string]any{"CommandsPerMinute": 0, "DataDirectory": filepath.Join(dir, "data")})
	// The caller must be a channel member, as on a real server.
	h.API.AddUser(&model.User{Id: "u1", Username: "alice", Roles: "system_user"})
	h.API.AddChannel(&model.Channel{Id: "c1", TeamId: "t1", Type: model.ChannelTypeOpen, Name: "town-square"})
	h.API.AddMember("c1", "u1", model.PermissionCreatePost.Id, model.PermissionReadChannel.Id)
	defer h.Env.Shutdown()
	var res result

	// Cold start: exec -> handshake -> Implemented -> OnActivate reply.
	var colds []time.Duration
	for i := 0; i < b.coldRuns; i++ {
		start := time.Now()
		_, ok, err := h.Env.Activate(harness.PluginID)
		d := time.Since(start)
		if err != nil || !ok {
			return result{err: fmt.Errorf("%s: Activate: %v (activated=%v)", name, err, ok)}
		}
		colds = append(colds, d)
		if i < b.coldRuns-1 {
			h.Env.Deactivate(harness.PluginID)
			waitNoProcess(h)
		}
	}
	sort.Slice(colds, func(i, j int) bool { return colds[i] < colds[j] })
	res.coldStart = colds[len(colds)/2]

	hooks, err := h.Env.HooksForPlugin(harness.PluginID)
	if err != nil {
		return result{err: err}
	}

	time.Sleep(time.Second)
	if pids := h.PluginPIDs(); len(pids) == 1 {
		res.idleRSSKiB, _ = harness.ProcKiB(pids[0], "VmRSS")
	}

	args := &model.CommandArgs{Command: "/claude help", UserId: "u1", ChannelId: "c1", TeamId: "t1"}
	for i := 0; i < b.warmup; i++ {
		hooks.ExecuteCommand(&plugin.Context{}, args)
	}
	lat := make([]time.Duration, b.calls)
	for i := range lat {
		start := time.Now()
		r, appErr := hooks.ExecuteCommand(&plugin.Context{}, args)
		lat[i] = time.Since(start)
		if appErr != nil || r == nil || !strings.Contains(r.Text, "/claude start") {
			return result{err: fmt.Errorf("%s: /claude help answered %v %v", name, r, appErr)}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.p50 = lat[len(lat)/2]
	res.p99 = lat[len(lat)*99/100]

	body := make([]byte, 1<<20)
	rand.Read(body)
	serve := func(method, target string, body []byte) *httptest.ResponseRecorder {
		var req = httptest.NewRequest(method, target, nil)
		if body != nil {
			req = httptest.NewRequest(method, target, bytes.NewReader(body))
		}
		req.Header.Set("Mattermost-User-Id", "u1")
		rec := httptest.NewRecorder()
		hooks.ServeHTTP(&plugin.Context{RequestId: "bench"}, rec, req)
		return rec
	}
	// one untimed round of each
	serve("POST", "/api/v1/diag/echo", body)
	serve("GET", "/api/v1/diag/download?bytes=1048576", nil)

	pid := 0
	if pids := h.PluginPIDs(); len(pids) == 1 {
		pid = pids[0]
	} else {
		fmt.Printf("pluginbench: %s: %d plugin processes, the plugin's CPU is not measured\n", name, len(pids))
	}
	cpu0 := sampleCPU(pid)
	start := time.Now()
	for i := 0; i < b.transfers; i++ {
		rec := serve("POST", "/api/v1/diag/echo", body)
		if rec.Code != 200 || rec.Body.Len() != len(body) {
			return result{err: fmt.Errorf("%s: echo answered %d with %d bytes", name, rec.Code, rec.Body.Len())}
		}
	}
	res.upload = float64(b.transfers*len(body)) / time.Since(start).Seconds()
	cpu1 := sampleCPU(pid)
	res.uploadCPU = cpu1.perMiB(cpu0, b.transfers)

	start = time.Now()
	for i := 0; i < b.transfers; i++ {
		rec := serve("GET", "/api/v1/diag/download?bytes=1048576", nil)
		if rec.Code != 200 || rec.Body.Len() != 1<<20 {
			return result{err: fmt.Errorf("%s: download answered %d with %d bytes", name, rec.Code, rec.Body.Len())}
		}
	}
	res.download = float64(b.transfers<<20) / time.Since(start).Seconds()
	res.downloadCPU = sampleCPU(pid).perMiB(cpu1, b.transfers)
	return res
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

func (s cpuSample) perMiB(before cpuSample, mibs int) cpuPerMiB {
	return cpuPerMiB{(s.plugin - before.plugin) / time.Duration(mibs), (s.host - before.host) / time.Duration(mibs)}
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
