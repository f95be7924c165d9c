// Command yamuxpeer plays the Mattermost HOST against a Rust plugin transport (our yamux server
// session + MuxBroker) listening on a unix socket. It uses the real hashicorp/yamux v0.1.2 client
// and, in the second session, go-plugin v1.7.0's real RPCClient and MuxBroker.
//
// Session 1 ("lab", scripted): opens streams 1,3,5 like go-plugin, then drives the Rust peer over
// a line protocol on stream 1:
//
//	accept-echo N   -> "ids a b ..."   Rust takes N broker ids and echoes each stream it accepts
//	dial-echo ID    -> "ok"            Rust dials host broker id ID and echoes on it
//	accept-sink     -> "ids a"         Rust accepts id a, writes "early\n", FINs, counts input
//	sink-result A   -> "sunk BYTES"    after the sink for id A saw EOF
//	bye             -> "bye"           then this program closes the session
//
// Rust writes "stdout-hello\n" on stream 3 and FINs; it never writes stream 5, which checks
// that host-opened streams are ACKed without application traffic.
//
// Session 2 ("go-plugin"): plugin.NewRPCClient over a second connection; the Rust peer answers
// Dispenser.Dispense and Control.Quit with canned gob bytes (the codec is not part of the
// transport), so RPCClient.Dispense exercises go-plugin's own MuxBroker.Dial, and the dispensed
// *plugin.MuxBroker is used for Accept (Rust dials) and Dial (Rust accepts).
//
// Output: one "PASS name" / "FAIL name: why" line per check and a final "N passed, M failed".
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/yamux"
)

var (
	socketPath   = flag.String("socket", "", "unix socket of the Rust peer")
	keepAlive    = flag.Duration("keepalive", 200*time.Millisecond, "yamux KeepAliveInterval (Go default 30s)")
	openTimeout  = flag.Duration("open-timeout", time.Second, "yamux StreamOpenTimeout (Go default 75s)")
	writeTimeout = flag.Duration("write-timeout", time.Second, "yamux ConnectionWriteTimeout, also the ping deadline (Go default 10s)")
	skipGoPlugin = flag.Bool("skip-goplugin", false, "skip session 2 (go-plugin RPCClient)")
	bigMiB       = flag.Int("big-mib", 20, "size of the large echo in MiB")
)

var passed, failed int

func pass(name string, extra string) {
	passed++
	if extra != "" {
		fmt.Printf("PASS %s (%s)\n", name, extra)
	} else {
		fmt.Printf("PASS %s\n", name)
	}
}

func fail(name string, err error) {
	failed++
	fmt.Printf("FAIL %s: %v\n", name, err)
}

func check(name string, err error) bool {
	if err != nil {
		fail(name, err)
		return false
	}
	pass(name, "")
	return true
}

// hostBroker re-implements the host half of go-plugin's MuxBroker id exchange for session 1:
// plugin.MuxBroker cannot be constructed from outside the package (newMuxBroker is unexported).
// Wire behaviour is the same as mux_broker.go: Dial writes the id as 4 bytes little-endian and
// reads the same 4 bytes back; the accept loop reads the id of every incoming stream and parks
// it until Accept(id) claims it and writes the id back as the ack.
type hostBroker struct {
	sess    *yamux.Session
	mu      sync.Mutex
	pending map[uint32]chan net.Conn
}

func (b *hostBroker) ch(id uint32) chan net.Conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.pending[id]
	if !ok {
		c = make(chan net.Conn, 1)
		b.pending[id] = c
	}
	return c
}

func (b *hostBroker) run() {
	for {
		s, err := b.sess.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			var id uint32
			if err := binary.Read(s, binary.LittleEndian, &id); err != nil {
				s.Close()
				return
			}
			select {
			case b.ch(id) <- s:
			default:
				s.Close()
			}
		}()
	}
}

func (b *hostBroker) Accept(id uint32) (net.Conn, error) {
	select {
	case c := <-b.ch(id):
		if err := binary.Write(c, binary.LittleEndian, id); err != nil {
			return nil, err
		}
		return c, nil
	case <-time.After(5 * time.Second):
		return nil, fmt.Errorf("timeout waiting for accept of %d", id)
	}
}

func (b *hostBroker) Dial(id uint32) (net.Conn, error) {
	s, err := b.sess.OpenStream()
	if err != nil {
		return nil, err
	}
	if err := binary.Write(s, binary.LittleEndian, id); err != nil {
		return nil, err
	}
	var ack uint32
	if err := binary.Read(s, binary.LittleEndian, &ack); err != nil {
		return nil, err
	}
	if ack != id {
		return nil, fmt.Errorf("bad ack: %d (expected %d)", ack, id)
	}
	return s, nil
}

type control struct {
	conn net.Conn
	r    *bufio.Reader
}

func (c *control) call(line string) (string, error) {
	if _, err := io.WriteString(c.conn, line+"\n"); err != nil {
		return "", err
	}
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := c.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reply to %q: %w", line, err)
	}
	return strings.TrimSpace(resp), nil
}

func (c *control) ids(line string) ([]uint32, error) {
	resp, err := c.call(line)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(resp)
	if len(f) < 1 || f[0] != "ids" {
		return nil, fmt.Errorf("unexpected reply %q", resp)
	}
	var out []uint32
	for _, s := range f[1:] {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, err
		}
		out = append(out, uint32(n))
	}
	return out, nil
}

// echo writes data, half-closes (FIN) while reading concurrently, and checks the bytes that
// come back up to the peer's FIN are identical.
func echo(conn net.Conn, data []byte) error {
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		if err == nil {
			err = conn.Close() // yamux Close = half-close (FIN); reads continue
		}
		errc <- err
	}()
	got, rerr := io.ReadAll(conn)
	if werr := <-errc; werr != nil {
		return fmt.Errorf("write: %w", werr)
	}
	if rerr != nil {
		return fmt.Errorf("read after %d bytes: %w", len(got), rerr)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("echo mismatch: sent %d bytes, got %d", len(data), len(got))
	}
	return nil
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func yamuxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.KeepAliveInterval = *keepAlive
	cfg.StreamOpenTimeout = *openTimeout
	cfg.ConnectionWriteTimeout = *writeTimeout
	cfg.LogOutput = os.Stderr
	return cfg
}

func lab() {
	conn, err := net.Dial("unix", *socketPath)
	if !check("lab: connect to unix socket", err) {
		return
	}
	sess, err := yamux.Client(conn, yamuxConfig())
	if !check("lab: yamux client", err) {
		return
	}
	defer sess.Close()
	var std [3]*yamux.Stream
	for i := range std {
		std[i], err = sess.OpenStream()
		if err != nil {
			fail("lab: open streams 1,3,5", err)
			return
		}
	}
	if std[0].StreamID() != 1 || std[1].StreamID() != 3 || std[2].StreamID() != 5 {
		fail("lab: open streams 1,3,5", fmt.Errorf("ids %d %d %d", std[0].StreamID(), std[1].StreamID(), std[2].StreamID()))
		return
	}
	pass("lab: open streams 1,3,5", "")
	ctl := &control{conn: std[0], r: bufio.NewReader(std[0])}
	broker := &hostBroker{sess: sess, pending: map[uint32]chan net.Conn{}}
	go broker.run()

	out, err := io.ReadAll(std[1])
	if err == nil && string(out) != "stdout-hello\n" {
		err = fmt.Errorf("got %q", out)
	}
	check("lab: stdout stream carries plugin output and FIN", err)

	rtt, err := sess.Ping()
	if check("lab: Go ping answered", err) {
		fmt.Printf("  ping rtt %v\n", rtt)
	}

	for _, sz := range []struct {
		name string
		n    int
	}{{"1 KiB", 1024}, {"1 MiB", 1 << 20}, {fmt.Sprintf("%d MiB", *bigMiB), *bigMiB << 20}} {
		name := "lab: echo " + sz.name + " both ways through broker stream (host dials)"
		ids, err := ctl.ids("accept-echo 1")
		if err != nil || len(ids) != 1 {
			fail(name, fmt.Errorf("accept-echo: %v %v", ids, err))
			continue
		}
		c, err := broker.Dial(ids[0])
		if err != nil {
			fail(name, err)
			continue
		}
		start := time.Now()
		err = echo(c, random(sz.n))
		el := time.Since(start)
		if err != nil {
			fail(name, err)
			continue
		}
		mbs := float64(sz.n) / 1e6 / el.Seconds()
		pass(name, fmt.Sprintf("%v, %.1f MB/s each way", el.Round(time.Millisecond), mbs))
	}

	const n = 50
	{
		name := "lab: 50 concurrent echo streams (256 KiB each)"
		ids, err := ctl.ids(fmt.Sprintf("accept-echo %d", n))
		if err != nil || len(ids) != n {
			fail(name, fmt.Errorf("accept-echo: %d ids, %v", len(ids), err))
		} else {
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for _, id := range ids {
				wg.Add(1)
				go func(id uint32) {
					defer wg.Done()
					c, err := broker.Dial(id)
					if err == nil {
						err = echo(c, random(256<<10))
					}
					if err != nil {
						errs <- fmt.Errorf("id %d: %w", id, err)
					}
				}(id)
			}
			wg.Wait()
			close(errs)
			if err := <-errs; err != nil {
				fail(name, err)
			} else {
				pass(name, "")
			}
		}
	}

	{
		name := "lab: plugin-initiated stream (Rust dials host broker id, even stream id, 1 MiB echo)"
		id := uint32(100)
		resp, err := ctl.call(fmt.Sprintf("dial-echo %d", id))
		if err == nil && resp != "ok" {
			err = fmt.Errorf("reply %q", resp)
		}
		var c net.Conn
		if err == nil {
			c, err = broker.Accept(id)
		}
		if err == nil {
			if s, ok := c.(*yamux.Stream); ok && s.StreamID()%2 != 0 {
				err = fmt.Errorf("plugin opened odd stream id %d", s.StreamID())
			}
		}
		if err == nil {
			err = echo(c, random(1<<20))
		}
		check(name, err)
	}

	{
		name := "lab: FIN half-close (Rust FINs first, still reads host data until host FIN)"
		ids, err := ctl.ids("accept-sink")
		var c net.Conn
		if err == nil {
			c, err = broker.Dial(ids[0])
		}
		var early []byte
		if err == nil {
			early, err = io.ReadAll(c) // ends at Rust's FIN
		}
		if err == nil && string(early) != "early\n" {
			err = fmt.Errorf("got %q before FIN", early)
		}
		const sunk = 300 << 10
		if err == nil {
			_, err = c.Write(random(sunk)) // more than one window after the peer's FIN
		}
		if err == nil {
			err = c.Close()
		}
		var resp string
		if err == nil {
			resp, err = ctl.call(fmt.Sprintf("sink-result %d", ids[0]))
		}
		if err == nil && resp != fmt.Sprintf("sunk %d", sunk) {
			err = fmt.Errorf("reply %q", resp)
		}
		check(name, err)
	}

	{
		name := "lab: keepalive pings every " + keepAlive.String() + " answered, idle stream 5 ACKed; session alive after 2s"
		time.Sleep(2 * time.Second)
		var err error
		if sess.IsClosed() {
			err = fmt.Errorf("Go closed the session")
		} else if _, err = ctl.call("stats"); err == nil {
			_, err = sess.Ping()
		}
		check(name, err)
	}

	{
		resp, err := ctl.call("bye")
		if err == nil && resp != "bye" {
			err = fmt.Errorf("reply %q", resp)
		}
		if err == nil {
			err = sess.Close()
		}
		check("lab: session closed by host (Rust measures its end)", err)
	}
}

// hooksPlugin hands back the go-plugin MuxBroker given to Plugin.Client by RPCClient.Dispense.
type hooksPlugin struct{ broker chan *plugin.MuxBroker }

func (p *hooksPlugin) Server(*plugin.MuxBroker) (interface{}, error) { return nil, nil }
func (p *hooksPlugin) Client(b *plugin.MuxBroker, _ *rpc.Client) (interface{}, error) {
	p.broker <- b
	return "hooks", nil
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func goPlugin() {
	conn, err := net.Dial("unix", *socketPath)
	if !check("go-plugin: connect", err) {
		return
	}
	hp := &hooksPlugin{broker: make(chan *plugin.MuxBroker, 1)}
	client, err := plugin.NewRPCClient(conn, map[string]plugin.Plugin{"hooks": hp})
	if !check("go-plugin: NewRPCClient (yamux.Client default config, opens 1,3,5)", err) {
		return
	}
	var stdout, stderr lockedBuf
	client.SyncStreams(&stdout, &stderr)

	raw, err := client.Dispense("hooks")
	if err == nil && raw != "hooks" {
		err = fmt.Errorf("dispensed %v", raw)
	}
	if !check("go-plugin: RPCClient.Dispense -> real MuxBroker.Dial(plugin id) acked", err) {
		client.Close()
		return
	}
	b := <-hp.broker

	{
		// Rust dials host id 1 right after the dispense; go-plugin parks it until Accept.
		id := b.NextId()
		c, err := b.Accept(id)
		if err == nil {
			err = echo(c, []byte("via go-plugin Accept"))
		}
		check(fmt.Sprintf("go-plugin: MuxBroker.Accept(%d) of Rust-dialed stream, echo", id), err)
	}
	{
		c, err := b.Dial(2)
		if err == nil {
			err = echo(c, random(64<<10))
		}
		check("go-plugin: MuxBroker.Dial(2) to Rust accept, echo", err)
	}
	{
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) && (stdout.String() == "" || stderr.String() == "") {
			time.Sleep(20 * time.Millisecond)
		}
		var err error
		if stdout.String() != "stdout-hello\n" || stderr.String() != "stderr-hello\n" {
			err = fmt.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
		}
		check("go-plugin: SyncStreams copies plugin stdout/stderr streams", err)
	}
	check("go-plugin: RPCClient.Close (Control.Quit answered, session closed)", client.Close())
}

func main() {
	flag.Parse()
	if *socketPath == "" {
		fmt.Fprintln(os.Stderr, "usage: yamuxpeer -socket PATH")
		os.Exit(2)
	}
	lab()
	if !*skipGoPlugin {
		goPlugin()
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
