// Package realserver runs a real Mattermost server on loopback for the plugin's tests and for
// people who want to try the plugin: PostgreSQL from Debian in a throw-away directory, the server
// built from the Go module proxy (tests/mmserver, `make mattermost-server`), and the plugin
// installed through the REST API exactly as System Console does it.
//
// Everything it starts is a child process it knows by pid and stops by pid; both children also
// get SIGKILL from the kernel when the process that started them dies (Pdeathsig), so a test
// that is killed leaves nothing behind.
package realserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"claudecode/conformance/harness"

	"github.com/mattermost/mattermost/server/public/model"
)

// PluginID is the id in plugin.json.
const PluginID = "claude-code"

// Locations of the server build, from the environment `make mattermost-server` sets.
type Build struct {
	Bin string // MM_SERVER_BIN: the mattermost executable
	Src string // MM_SERVER_SRC: the server/v8 module source (i18n, templates, fonts)
}

// BuildFromEnv reads MM_SERVER_BIN and MM_SERVER_SRC.
func BuildFromEnv() (Build, error) {
	b := Build{Bin: os.Getenv("MM_SERVER_BIN"), Src: os.Getenv("MM_SERVER_SRC")}
	if b.Bin == "" || b.Src == "" {
		return b, errors.New("MM_SERVER_BIN and MM_SERVER_SRC are not set: run through `make e2e-server` (it builds the server)")
	}
	for _, p := range []string{b.Bin, filepath.Join(b.Src, "i18n")} {
		if _, err := os.Stat(p); err != nil {
			return b, fmt.Errorf("server build: %w", err)
		}
	}
	return b, nil
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// child is a started process with its exit observed once.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func startChild(cmd *exec.Cmd) (*child, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.exited) }()
	return c, nil
}

func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// stop sends sig, waits up to grace, then SIGKILL.
func (c *child) stop(sig syscall.Signal, grace time.Duration) {
	if c == nil || !c.running() {
		return
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// Postgres is a throw-away PostgreSQL cluster listening on 127.0.0.1.
type Postgres struct {
	Dir  string
	Port int
	proc *child
}

// pgBinDir is the newest Debian PostgreSQL's bin directory.
func pgBinDir() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(found) == 0 {
		return "", errors.New("PostgreSQL is not installed (apt-get install postgresql; `make e2e-server` does it)")
	}
	version := func(p string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return v
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) > version(found[j]) })
	return filepath.Dir(found[0]), nil
}

// asPostgresUser runs a command as the `postgres` system user when we are root (PostgreSQL
// refuses to run as root), as ourselves otherwise.
func asPostgresUser(cmd *exec.Cmd, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs the postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}); err != nil {
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return nil
}

// StartPostgres initialises a cluster under dir (trust authentication, durability off: the data
// is thrown away) and starts it.
func StartPostgres(dir string) (*Postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// The postgres user must reach its directory through ours.
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o011 != 0o011 {
			_ = os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
	if err := asPostgresUser(initdb, dir); err != nil {
		return nil, err
	}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := asPostgresUser(cmd, dir); err != nil {
		return nil, err
	}
	proc, err := startChild(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	pg := &Postgres{Dir: dir, Port: port, proc: proc}
	psql := func(sql string) error {
		c := exec.Command(filepath.Join(bin, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql)
		out, err := c.CombinedOutput()
		if err != nil {
			return fmt.Errorf("psql %q: %v: %s", sql, err, out)
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for psql("SELECT 1") != nil {
		if !proc.running() || time.Now().After(deadline) {
			pg.Stop()
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return nil, fmt.Errorf("postgres did not start within 30 s:\n%s", log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := psql("CREATE DATABASE mattermost"); err != nil {
		pg.Stop()
		return nil, err
	}
	return pg, nil
}

// DSN is the data source for Mattermost.
func (p *Postgres) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/mattermost?sslmode=disable&connect_timeout=10", p.Port)
}

// Stop shuts the cluster down (fast shutdown), by pid.
func (p *Postgres) Stop() {
	if p != nil {
		p.proc.stop(syscall.SIGINT, 20*time.Second)
	}
}

// Server is a Mattermost server on 127.0.0.1, its state in Dir.
type Server struct {
	Dir     string
	URL     string
	LogFile string // the server's JSON log (FileLevel DEBUG)
	build   Build
	env     []string
	proc    *child
	starts  int
}

// NewServer lays out dir (config, data, plugins, logs, and links to the server's i18n,
// templates and fonts, which it looks for next to its working directory) and picks a port.
// Extra environment (MM_* settings) comes last and wins.
func NewServer(b Build, dir, dsn string, extraEnv ...string) (*Server, error) {
	for _, d := range []string{"config", "data", "plugins", "client/plugins", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"i18n", "templates", "fonts"} {
		link := filepath.Join(dir, d)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(b.Src, d), link); err != nil {
			return nil, err
		}
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := []string{
		"MM_SQLSETTINGS_DRIVERNAME=postgres",
		"MM_SQLSETTINGS_DATASOURCE=" + dsn,
		"MM_SERVICESETTINGS_SITEURL=" + url,
		fmt.Sprintf("MM_SERVICESETTINGS_LISTENADDRESS=127.0.0.1:%d", port),
		"MM_SERVICESETTINGS_ENABLELOCALMODE=false",
		"MM_SERVICESETTINGS_ENABLEUSERACCESSTOKENS=true",
		"MM_SERVICESETTINGS_ENABLESECURITYFIXALERT=false",
		"MM_SERVICESETTINGS_ENABLEDEVELOPER=false",
		"MM_PLUGINSETTINGS_ENABLE=true",
		"MM_PLUGINSETTINGS_ENABLEUPLOADS=true",
		"MM_PLUGINSETTINGS_ENABLEMARKETPLACE=false",
		"MM_PLUGINSETTINGS_ENABLEREMOTEMARKETPLACE=false",
		"MM_PLUGINSETTINGS_AUTOMATICPREPACKAGEDPLUGINS=false",
		"MM_PLUGINSETTINGS_DIRECTORY=" + filepath.Join(dir, "plugins"),
		"MM_PLUGINSETTINGS_CLIENTDIRECTORY=" + filepath.Join(dir, "client/plugins"),
		"MM_FILESETTINGS_DIRECTORY=" + filepath.Join(dir, "data") + "/",
		"MM_LOGSETTINGS_ENABLECONSOLE=true",
		"MM_LOGSETTINGS_CONSOLELEVEL=ERROR",
		"MM_LOGSETTINGS_ENABLEFILE=true",
		"MM_LOGSETTINGS_FILELEVEL=DEBUG",
		"MM_LOGSETTINGS_FILEJSON=true",
		"MM_LOGSETTINGS_FILELOCATION=" + filepath.Join(dir, "logs"),
		"MM_LOGSETTINGS_ENABLEDIAGNOSTICS=false",
		"MM_EMAILSETTINGS_SENDEMAILNOTIFICATIONS=false",
		"MM_EMAILSETTINGS_SENDPUSHNOTIFICATIONS=false",
		"MM_EMAILSETTINGS_REQUIREEMAILVERIFICATION=false",
		"MM_TEAMSETTINGS_ENABLEOPENSERVER=true",
		"MM_RATELIMITSETTINGS_ENABLE=false",
		"MM_METRICSSETTINGS_ENABLE=false",
	}
	// The server's environment: ours without any MM_ setting a developer's shell may carry.
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MM_") {
			base = append(base, kv)
		}
	}
	return &Server{
		Dir: dir, URL: url, LogFile: filepath.Join(dir, "logs", "mattermost.log"),
		build: b, env: append(append(base, env...), extraEnv...),
	}, nil
}

// Start runs the server and waits until it answers /api/v4/system/ping.
func (s *Server) Start(ctx context.Context) error {
	if s.proc != nil && s.proc.running() {
		return errors.New("the server is already running")
	}
	s.starts++
	out, err := os.Create(filepath.Join(s.Dir, fmt.Sprintf("server-%d.out", s.starts)))
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(s.build.Bin, "server", "--config", filepath.Join(s.Dir, "config", "config.json"))
	cmd.Dir = s.Dir
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = out, out
	if s.proc, err = startChild(cmd); err != nil {
		return fmt.Errorf("starting mattermost: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		if ok := s.ping(ctx); ok {
			return nil
		}
		if !s.proc.running() {
			b, _ := os.ReadFile(out.Name())
			return fmt.Errorf("mattermost exited during start-up (%v):\n%s", s.proc.err, tailOf(string(b), 4000))
		}
		select {
		case <-ctx.Done():
			s.Stop()
			return fmt.Errorf("mattermost did not answer /api/v4/system/ping within 3 min")
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *Server) ping(ctx context.Context) bool {
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/v4/system/ping", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// Running says whether the server process is alive.
func (s *Server) Running() bool { return s.proc != nil && s.proc.running() }

// PID of the server process (0 when not started).
func (s *Server) PID() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Stop sends SIGTERM (the server stops its plugins) and waits up to a minute, then SIGKILL.
func (s *Server) Stop() {
	if s != nil && s.proc != nil {
		s.proc.stop(syscall.SIGTERM, time.Minute)
	}
}

// LogEntry is one line of the server's JSON log.
type LogEntry struct {
	Level  string         `json:"level"`
	Msg    string         `json:"msg"`
	Raw    string         `json:"-"`
	Fields map[string]any `json:"-"`
}

// Log reads the server's log file (entries that are not JSON are skipped).
func (s *Server) Log() []LogEntry {
	f, err := os.Open(s.LogFile)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []LogEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	for sc.Scan() {
		var fields map[string]any
		if json.Unmarshal(sc.Bytes(), &fields) != nil {
			continue
		}
		e := LogEntry{Raw: sc.Text(), Fields: fields}
		e.Level, _ = fields["level"].(string)
		e.Msg, _ = fields["msg"].(string)
		out = append(out, e)
	}
	return out
}

// PluginProcesses lists the pids of the plugin processes: those running the installed plugin's
// executable, but not as a CLI's supervisor.
func (s *Server) PluginProcesses() []int {
	exe := filepath.Join(s.Dir, "plugins", PluginID, "server", "dist")
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && strings.HasPrefix(target, exe) && !harness.IsSupervisor(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func tailOf(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Install uploads a plugin tarball as System Console does (replacing an installed version) and
// enables it. The caller must be a system admin.
func Install(ctx context.Context, c *model.Client4, tarball string) (*model.Manifest, error) {
	f, err := os.Open(tarball)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, _, err := c.UploadPluginForced(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", filepath.Base(tarball), err)
	}
	if _, err := c.EnablePlugin(ctx, m.Id); err != nil {
		return m, fmt.Errorf("enable %s: %w", m.Id, err)
	}
	return m, nil
}

// Configure saves the plugin's settings through PUT /api/v4/config, as System Console's plugin
// settings page does. The server's answer (an error when the plugin refuses the settings in
// ConfigurationWillBeSaved) is returned as is.
func Configure(ctx context.Context, c *model.Client4, settings map[string]any) error {
	cfg, _, err := c.GetConfig(ctx)
	if err != nil {
		return fmt.Errorf("get config: %w", err)
	}
	if cfg.PluginSettings.Plugins == nil {
		cfg.PluginSettings.Plugins = map[string]map[string]any{}
	}
	cfg.PluginSettings.Plugins[PluginID] = settings
	_, _, err = c.UpdateConfig(ctx, cfg)
	return err
}

// WaitActive waits until the plugin reports running (or failed to start), up to d.
func WaitActive(ctx context.Context, c *model.Client4, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		statuses, _, err := c.GetPluginStatuses(ctx)
		if err == nil {
			for _, st := range statuses {
				if st.PluginId != PluginID {
					continue
				}
				switch st.State {
				case model.PluginStateRunning:
					return nil
				case model.PluginStateFailedToStart, model.PluginStateFailedToStayRunning:
					return fmt.Errorf("plugin state %d: %s", st.State, st.Error)
				}
				last = fmt.Sprintf("state %d %s", st.State, st.Error)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("plugin not running after %v (%s)", d, last)
}
