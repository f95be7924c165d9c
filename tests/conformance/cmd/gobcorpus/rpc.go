package main

// net/rpc subcommands: rpc-record, rpc-client, rpc-server.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// ---- rpc-record ----------------------------------------------------------

// recordHooks is the "Plugin" service used for the recording.
type recordHooks struct{}

func (recordHooks) Implemented(args struct{}, reply *[]string) error {
	*reply = []string{"OnActivate", "ExecuteCommand"}
	return nil
}

func (recordHooks) OnActivate(args *plugin.Z_OnActivateArgs, returns *plugin.Z_OnActivateReturns) error {
	returns.A = &model.AppError{Id: "plugin.activate.failed", Message: "missing API key",
		StatusCode: 500, Where: "OnActivate"}
	return nil
}

func (recordHooks) ExecuteCommand(args *plugin.Z_ExecuteCommandArgs, returns *plugin.Z_ExecuteCommandReturns) error {
	returns.A = &model.CommandResponse{
		ResponseType: model.CommandResponseTypeEphemeral,
		Text:         "You asked: " + args.B.Command,
		Props:        model.StringInterface{"from_plugin": true},
	}
	if strings.Contains(args.B.Command, "attach") {
		// Single-entry maps only: keeps the recording byte-deterministic.
		returns.A.Attachments = []*model.SlackAttachment{{Text: "attached", Actions: []*model.PostAction{{
			Id: "ok", Type: model.PostActionTypeButton, Name: "OK",
			Integration: &model.PostActionIntegration{URL: "/plugins/x/ok", Context: map[string]any{"n": int64(1)}},
		}}}}
	}
	return nil
}

func (recordHooks) Fail(args string, reply *string) error { return errors.New("boom") }

// teeConn copies everything written on the connection into w.
type teeConn struct {
	net.Conn
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (t teeConn) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.w.Write(p)
	t.mu.Unlock()
	return t.Conn.Write(p)
}

type recordedCall struct {
	Seq           int    `json:"seq"`
	ServiceMethod string `json:"service_method"`
	Error         string `json:"error"`
	Arg           any    `json:"arg"`
	Reply         any    `json:"reply"`
}

func rpcRecord(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	srv := rpc.NewServer()
	if err := srv.RegisterName("Plugin", recordHooks{}); err != nil {
		return err
	}
	cEnd, sEnd := net.Pipe()
	var mu sync.Mutex
	var reqs, resps bytes.Buffer
	done := make(chan struct{})
	go func() {
		srv.ServeConn(teeConn{sEnd, &mu, &resps})
		close(done)
	}()
	client := rpc.NewClient(teeConn{cEnd, &mu, &reqs})

	typical := &plugin.Z_ExecuteCommandArgs{A: &plugin.Context{RequestId: idReq, SessionId: idSession}, B: typicalCommandArgs()}
	attach := &plugin.Z_ExecuteCommandArgs{A: &plugin.Context{RequestId: mmid("r2")},
		B: &model.CommandArgs{UserId: idUser, ChannelId: idChannel, TeamId: idTeam, Command: "/claude attach"}}
	calls := []struct {
		method string
		arg    any
		reply  any
	}{
		{"Plugin.Implemented", struct{}{}, new([]string)},
		{"Plugin.OnActivate", &plugin.Z_OnActivateArgs{APIMuxId: 2, DriverMuxId: 3}, new(plugin.Z_OnActivateReturns)},
		{"Plugin.ExecuteCommand", typical, new(plugin.Z_ExecuteCommandReturns)},
		{"Plugin.Fail", "please fail", new(string)},
		{"Plugin.Nope", struct{}{}, new(struct{})},
		{"Nope.X", struct{}{}, new(struct{})},
		{"Plugin.ExecuteCommand", attach, new(plugin.Z_ExecuteCommandReturns)},
		{"Plugin.Implemented", struct{}{}, new([]string)},
	}
	var rec []recordedCall
	for i, c := range calls {
		err := client.Call(c.method, c.arg, c.reply)
		r := recordedCall{Seq: i, ServiceMethod: c.method}
		var derr error
		if r.Arg, derr = Dump(c.arg); derr != nil {
			return derr
		}
		if err != nil {
			var se rpc.ServerError
			if !errors.As(err, &se) {
				return fmt.Errorf("call %s: transport error %v", c.method, err)
			}
			r.Error = string(se)
		} else if r.Reply, derr = Dump(c.reply); derr != nil {
			return derr
		}
		rec = append(rec, r)
	}
	client.Close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	js, err := json.MarshalIndent(rec, "", " ")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"rpc_requests.gob":  reqs.Bytes(),
		"rpc_responses.gob": resps.Bytes(),
		"rpc_calls.json":    append(js, '\n'),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("recorded %d calls: %d request bytes, %d response bytes\n", len(rec), reqs.Len(), resps.Len())
	return nil
}

// ---- Echo service (rpc-server, and the contract rpc-client checks) --------

type AddArgs struct{ A, B int }

type EchoService struct{}

func (EchoService) Echo(arg string, reply *string) error { *reply = arg; return nil }
func (EchoService) Add(arg AddArgs, reply *int) error    { *reply = arg.A + arg.B; return nil }
func (EchoService) Fail(arg string, reply *string) error { return errors.New(arg) }

// Post echoes the post as the Rust model carries it (see unmodelled.go), so
// the Go server and the Rust server answer alike.
func (EchoService) Post(arg *model.Post, reply *model.Post) error {
	stripped, err := withoutUnmodelled(arg)
	if err != nil {
		return err
	}
	return stripped.(*model.Post).ShallowCopy(reply)
}

func rpcServe(socket string) error {
	os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	defer os.Remove(socket)
	defer l.Close()
	srv := rpc.NewServer()
	if err := srv.RegisterName("Echo", EchoService{}); err != nil {
		return err
	}
	fmt.Printf("READY %s\n", socket)
	conn, err := l.Accept()
	if err != nil {
		return err
	}
	srv.ServeConn(conn) // returns when the client closes the connection
	return nil
}

// ---- rpc-client ---------------------------------------------------------

const callTimeout = 20 * time.Second

func callWait(c *rpc.Client, method string, arg, reply any) error {
	call := c.Go(method, arg, reply, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
		return call.Error
	case <-time.After(callTimeout):
		return fmt.Errorf("timeout after %s", callTimeout)
	}
}

func rpcClientCheck(w io.Writer, socket string) (int, error) {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return 0, err
	}
	c := rpc.NewClient(conn)
	defer c.Close()

	passed, failed := 0, 0
	check := func(name string, f func() error) {
		if err := f(); err != nil {
			failed++
			fmt.Fprintf(w, "FAIL %s: %v\n", name, err)
		} else {
			passed++
			fmt.Fprintf(w, "PASS %s\n", name)
		}
	}
	echo := func(s string) error {
		var r string
		if err := callWait(c, "Echo.Echo", s, &r); err != nil {
			return err
		}
		if r != s {
			return fmt.Errorf("got %s, want %s", short(r), short(s))
		}
		return nil
	}
	wantServerError := func(method, want string) error {
		var r string
		err := callWait(c, method, "x", &r)
		var se rpc.ServerError
		if !errors.As(err, &se) {
			return fmt.Errorf("want server error %q, got %v", want, err)
		}
		if string(se) != want {
			return fmt.Errorf("error %q, want %q", se, want)
		}
		return nil
	}
	postRoundTrip := func(p *model.Post) error {
		var r model.Post
		if err := callWait(c, "Echo.Post", p, &r); err != nil {
			return err
		}
		want, err := withoutUnmodelled(p)
		if err != nil {
			return err
		}
		if d := valuesEqual(reflect.ValueOf(want).Elem(), reflect.ValueOf(&r).Elem(), "$"); d != "" {
			return fmt.Errorf("post differs: %s", d)
		}
		return nil
	}

	check("echo", func() error { return echo("hello, wörld 👋") })
	check("echo_empty", func() error { return echo("") })
	check("add", func() error {
		var r int
		if err := callWait(c, "Echo.Add", AddArgs{A: 40, B: 2}, &r); err != nil {
			return err
		}
		if r != 42 {
			return fmt.Errorf("got %d", r)
		}
		return nil
	})
	check("add_negative", func() error {
		var r int
		if err := callWait(c, "Echo.Add", AddArgs{A: -5000000000, B: 3}, &r); err != nil {
			return err
		}
		if r != -4999999997 {
			return fmt.Errorf("got %d", r)
		}
		return nil
	})
	check("fail", func() error { return wantServerError("Echo.Fail", "x") })
	check("fail_text", func() error {
		var r string
		err := callWait(c, "Echo.Fail", "custom failure: ünïcode", &r)
		var se rpc.ServerError
		if !errors.As(err, &se) || string(se) != "custom failure: ünïcode" {
			return fmt.Errorf("got %v", err)
		}
		return nil
	})
	check("post_typical", func() error { return postRoundTrip(typicalPost()) })
	check("post_full", func() error { return postRoundTrip(fillAll(&model.Post{Message: "full"})) })
	check("post_unicode", func() error {
		return postRoundTrip(&model.Post{Id: idPost, Message: unicodeText(), Props: nestedProps()})
	})
	check("concurrent_200", func() error {
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if i%2 == 0 {
					if err := echo(fmt.Sprintf("msg-%d-%s", i, strings.Repeat("x", i*7))); err != nil {
						errs <- fmt.Errorf("call %d: %w", i, err)
					}
					return
				}
				var r int
				if err := callWait(c, "Echo.Add", AddArgs{A: i, B: i * 1000}, &r); err != nil {
					errs <- fmt.Errorf("call %d: %w", i, err)
				} else if r != i*1001 {
					errs <- fmt.Errorf("call %d: got %d want %d", i, r, i*1001)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		var all []string
		for err := range errs {
			all = append(all, err.Error())
		}
		if len(all) > 0 {
			return fmt.Errorf("%d errors, first: %s", len(all), all[0])
		}
		return nil
	})
	check("unknown_method", func() error { return wantServerError("Echo.Nope", "rpc: can't find method Echo.Nope") })
	check("unknown_service", func() error { return wantServerError("Nope.X", "rpc: can't find service Nope.X") })
	check("ill_formed", func() error {
		return wantServerError("NoDot", "rpc: service/method request ill-formed: NoDot")
	})
	check("usable_after_errors", func() error { return echo("still alive") })
	check("big_1MiB", func() error {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
		return echo(string(b))
	})
	check("usable_at_end", func() error { return echo("bye") })
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return failed, nil
}
