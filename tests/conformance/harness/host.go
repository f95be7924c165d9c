package harness

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

// PluginID is the id in plugin.json.
const PluginID = "claude-code"

// The go-plugin handshake Mattermost uses (unexported var `handshake` in plugin/api.go).
const (
	CookieKey   = "MATTERMOST_PLUGIN"
	CookieValue = "Securely message teams, anywhere."
)

// ConformanceDir is tests/conformance, found from this source file.
func ConformanceDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// RepoRoot is the repository root (plugin.json lives there).
func RepoRoot() string { return filepath.Dir(filepath.Dir(ConformanceDir())) }

// BuildRefTarball builds the Go reference plugin (tests/conformance/refplugin) for
// linux-amd64 and linux-arm64 (static, CGO off) and packs it exactly like `make dist`
// packs the Rust plugin: claude-code/{plugin.json, server/dist/plugin-linux-<arch>}.
func BuildRefTarball(workDir string) (string, error) {
	bins := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		out := filepath.Join(workDir, "refplugin-linux-"+arch)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./refplugin")
		cmd.Dir = ConformanceDir()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build refplugin %s: %v\n%s", arch, err, b)
		}
		bins["server/dist/plugin-linux-"+arch] = out
	}
	manifest, err := ServerOnlyManifest()
	if err != nil {
		return "", err
	}
	tgz := filepath.Join(workDir, "claude-code-reference.tar.gz")
	return tgz, WriteTarball(tgz, manifest, bins)
}

// ServerOnlyManifest is plugin.json without its "webapp" section, for the Go stand-ins of the
// server half (refplugin, chatstub): they ship no webapp bundle, and Mattermost refuses to
// activate a plugin whose manifest names a bundle the tarball lacks (Environment.Activate →
// UnpackWebappBundle).
func ServerOnlyManifest() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "plugin.json"))
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("plugin.json: %w", err)
	}
	delete(m, "webapp")
	return json.MarshalIndent(m, "", "    ")
}

// WriteTarball writes claude-code/plugin.json (0644) and the executables (0755).
func WriteTarball(path string, manifest []byte, executables map[string]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	now := time.Now()
	for _, d := range []string{PluginID + "/", PluginID + "/server/", PluginID + "/server/dist/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: now}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: PluginID + "/plugin.json", Mode: 0o644, Size: int64(len(manifest)), ModTime: now}); err != nil {
		return err
	}
	if _, err := tw.Write(manifest); err != nil {
		return err
	}
	for name, src := range executables {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: PluginID + "/" + name, Mode: 0o755, Size: int64(len(b)), ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}

// TarEntry is one file of a tarball.
type TarEntry struct {
	Name string
	Mode int64
	Type byte
	Size int64
}

// ListTarball lists a .tar.gz.
func ListTarball(path string) ([]TarEntry, error) {
	var out []TarEntry
	err := walkTarball(path, func(h *tar.Header, _ io.Reader) error {
		out = append(out, TarEntry{Name: h.Name, Mode: h.Mode, Type: h.Typeflag, Size: h.Size})
		return nil
	})
	return out, err
}

func walkTarball(path string, fn func(*tar.Header, io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

// UnpackTarball extracts a plugin tarball into pluginDir (so the bundle lands in
// pluginDir/claude-code), like the server's install does. Returns the bundle dir.
func UnpackTarball(tgz, pluginDir string) (string, error) {
	err := walkTarball(tgz, func(h *tar.Header, r io.Reader) error {
		name := filepath.Clean(h.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			return fmt.Errorf("unsafe path in tarball: %s", h.Name)
		}
		dst := filepath.Join(pluginDir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			return os.MkdirAll(dst, 0o755)
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode&0o777))
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, r); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		default:
			return fmt.Errorf("unexpected tar entry type %q for %s", h.Typeflag, h.Name)
		}
	})
	if err != nil {
		return "", err
	}
	bundle := filepath.Join(pluginDir, PluginID)
	if _, err := os.Stat(filepath.Join(bundle, "plugin.json")); err != nil {
		return "", fmt.Errorf("tarball has no %s/plugin.json: %w", PluginID, err)
	}
	return bundle, nil
}

// Host is a plugin.Environment with one unpacked plugin and the fake API.
type Host struct {
	Env        *plugin.Environment
	API        *FakeAPI
	PluginDir  string
	BundleDir  string
	Executable string // absolute path of this platform's executable
}

// NewHost unpacks tgz into workDir/plugins and builds an Environment whose API is a fresh
// FakeAPI. It sets MM_CLAUDE_CODE_DIAGNOSTICS=1 (the plugin inherits the environment).
func NewHost(tgz, workDir string, logger *mlog.Logger) (*Host, error) {
	b, err := unpackBundle(tgz, workDir)
	if err != nil {
		return nil, err
	}
	api := NewFakeAPI(b.BundleDir)
	api.SetPluginID(b.Manifest.Id)
	env, err := plugin.NewEnvironment(func(*model.Manifest) plugin.API { return api.ForPlugin() }, nil, b.PluginDir, b.webappDir, logger, nil)
	if err != nil {
		return nil, err
	}
	return &Host{Env: env, API: api, PluginDir: b.PluginDir, BundleDir: b.BundleDir, Executable: b.Executable}, nil
}

// bundle is a plugin tarball unpacked the way the server installs it.
type bundle struct {
	PluginDir, webappDir, BundleDir string
	Executable                      string // absolute path of this platform's executable
	Manifest                        *model.Manifest
}

// unpackBundle unpacks tgz into workDir/plugins (creating workDir/client-plugins too) and sets
// MM_CLAUDE_CODE_DIAGNOSTICS=1 (the plugin inherits the environment).
func unpackBundle(tgz, workDir string) (bundle, error) {
	os.Setenv("MM_CLAUDE_CODE_DIAGNOSTICS", "1")
	workDir, err := filepath.Abs(workDir)
	if err != nil {
		return bundle{}, err
	}
	if resolved, err := filepath.EvalSymlinks(workDir); err == nil {
		workDir = resolved
	}
	b := bundle{PluginDir: filepath.Join(workDir, "plugins"), webappDir: filepath.Join(workDir, "client-plugins")}
	for _, d := range []string{b.PluginDir, b.webappDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return bundle{}, err
		}
	}
	if b.BundleDir, err = UnpackTarball(tgz, b.PluginDir); err != nil {
		return bundle{}, err
	}
	info := model.BundleInfoForPath(b.BundleDir)
	if info.ManifestError != nil {
		return bundle{}, info.ManifestError
	}
	b.Manifest = info.Manifest
	exe := info.Manifest.GetExecutableForRuntime(runtime.GOOS, runtime.GOARCH)
	if exe == "" {
		return bundle{}, fmt.Errorf("plugin.json has no executable for %s-%s", runtime.GOOS, runtime.GOARCH)
	}
	b.Executable = filepath.Join(b.BundleDir, exe)
	return b, nil
}

// PluginPIDs returns the pids of live processes running h.Executable.
//
// The same executable also runs as each Claude Code CLI's supervisor (`__supervise`); those
// are not the plugin and are left out (AllPIDs has them).
func (h *Host) PluginPIDs() []int {
	var out []int
	for _, pid := range PIDsOf(h.Executable) {
		if !IsSupervisor(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// AllPIDs are the plugin's processes and its CLIs' supervisors.
func (h *Host) AllPIDs() []int { return PIDsOf(h.Executable) }

// IsSupervisor says whether pid runs the plugin executable as a CLI's supervisor.
func IsSupervisor(pid int) bool {
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return slices.Contains(strings.Split(string(cmdline), "\x00"), "__supervise")
}

// PIDsOf scans /proc for processes whose executable is exe (zombies excluded).
func PIDsOf(exe string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || l != exe {
			continue
		}
		if st, _ := ProcStatus(pid, "State"); strings.HasPrefix(st, "Z") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// ProcStatus returns the value of a /proc/<pid>/status field.
func ProcStatus(pid int, field string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// ProcKiB reads a "<n> kB" field (VmRSS, VmHWM) of /proc/<pid>/status.
func ProcKiB(pid int, field string) (int64, error) {
	v, err := ProcStatus(pid, field)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
}

// Started is a plugin process started by hand with the Mattermost handshake environment.
type Started struct {
	Cmd     *exec.Cmd
	Network string
	Addr    string
	Exited  chan error
	stderr  *strings.Builder
}

// StartByHand execs the plugin like go-plugin does (env + cookie), reads the handshake line.
func StartByHand(exe string, cookie string, timeout time.Duration) (*Started, string, error) {
	cmd := exec.Command(exe)
	env := os.Environ()
	if cookie != "" {
		env = append(env, CookieKey+"="+cookie)
	}
	cmd.Env = append(env, "PLUGIN_MIN_PORT=10000", "PLUGIN_MAX_PORT=25000", "PLUGIN_PROTOCOL_VERSIONS=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	s := &Started{Cmd: cmd, Exited: make(chan error, 1), stderr: &stderr}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		io.Copy(io.Discard, stdout)
	}()
	go func() { s.Exited <- cmd.Wait() }()
	select {
	case line := <-lines:
		parts := strings.Split(strings.TrimSpace(line), "|")
		if len(parts) >= 4 {
			s.Network, s.Addr = parts[2], parts[3]
		}
		return s, line, nil
	case <-time.After(timeout):
		return s, "", fmt.Errorf("no handshake line within %v", timeout)
	}
}

// Stderr is what the process wrote to stderr (complete once it exited).
func (s *Started) Stderr() string { return s.stderr.String() }

// HostConn is the host side of a hand-made go-plugin connection.
type HostConn struct {
	Conn    net.Conn
	Session *yamux.Session
	Control *rpc.Client
}

// Connect dials the plugin, opens the control, stdout and stderr streams the way go-plugin's
// RPCClient does, and returns a net/rpc client on the control stream.
func (s *Started) Connect() (*HostConn, error) {
	conn, err := net.DialTimeout(s.Network, s.Addr, 3*time.Second)
	if err != nil {
		return nil, err
	}
	sess, err := yamux.Client(conn, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	control, err := sess.Open()
	if err != nil {
		conn.Close()
		return nil, err
	}
	for i := 0; i < 2; i++ { // stdout, stderr
		st, err := sess.Open()
		if err != nil {
			conn.Close()
			return nil, err
		}
		go io.Copy(io.Discard, st)
	}
	return &HostConn{Conn: conn, Session: sess, Control: rpc.NewClient(control)}, nil
}

// Kill ends the process if it still runs.
func (s *Started) Kill() {
	if s.Cmd.Process != nil {
		_ = s.Cmd.Process.Kill()
	}
}

// NewLogger returns an mlog logger writing JSON lines of every level to w (use *mlog.Buffer
// to read them back), as the server's log would receive them.
func NewLogger(w io.Writer) (*mlog.Logger, error) {
	logger, err := mlog.NewLogger()
	if err != nil {
		return nil, err
	}
	if err := mlog.AddWriterTarget(logger, w, true, mlog.StdAll...); err != nil {
		return nil, err
	}
	return logger, nil
}
