// Command refplugin is the Go reference implementation of what the conformance harness
// (tests/conformance/pluginconf) checks in the Rust plugin: activation (bot "claude",
// command "claude"), /claude help, and the diagnostics HTTP routes that exist only while
// MM_CLAUDE_CODE_DIAGNOSTICS=1. It validates the harness and is the benchmark's Go baseline.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

const (
	cookieKey   = "MATTERMOST_PLUGIN"
	cookieValue = "Securely message teams, anywhere."
	helpText    = "Claude Code commands:\n" +
		"- `/claude start [prompt]` start a session in this channel\n" +
		"- `/claude help` show this help"
)

type refPlugin struct {
	plugin.MattermostPlugin
	mu    sync.Mutex
	botID string
	diag  bool
}

func (p *refPlugin) OnActivate() error {
	p.diag = os.Getenv("MM_CLAUDE_CODE_DIAGNOSTICS") == "1"
	botID, err := p.API.EnsureBotUser(&model.Bot{Username: "claude", DisplayName: "Claude", Description: "Claude Code"})
	if err != nil {
		return fmt.Errorf("ensure bot: %w", err)
	}
	p.mu.Lock()
	p.botID = botID
	p.mu.Unlock()
	ac := model.NewAutocompleteData("claude", "[command]", "Claude Code in this channel")
	ac.AddCommand(model.NewAutocompleteData("start", "[prompt]", "Start a Claude Code session"))
	ac.AddCommand(model.NewAutocompleteData("help", "", "Show help"))
	if err := p.API.RegisterCommand(&model.Command{
		Trigger:          "claude",
		AutoComplete:     true,
		AutoCompleteDesc: "Claude Code in this channel",
		AutoCompleteHint: "[command]",
		DisplayName:      "Claude Code",
		AutocompleteData: ac,
	}); err != nil {
		return fmt.Errorf("register command: %w", err)
	}
	p.API.LogInfo("claude-code ready", "version", "reference-go", "diagnostics", strconv.FormatBool(p.diag))
	return nil
}

func (p *refPlugin) OnDeactivate() error { return nil }

func (p *refPlugin) ExecuteCommand(_ *plugin.Context, args *model.CommandArgs) (*model.CommandResponse, *model.AppError) {
	fields := strings.Fields(args.Command)
	sub := ""
	if len(fields) > 1 {
		sub = fields[1]
	}
	switch sub {
	case "", "help":
		return &model.CommandResponse{ResponseType: model.CommandResponseTypeEphemeral, Text: helpText}, nil
	case "context":
		given := ""
		if len(fields) > 2 {
			given = fields[2]
		}
		return &model.CommandResponse{ResponseType: model.CommandResponseTypeEphemeral,
			Text: fmt.Sprintf("`/claude context` adds a `thread` or a `file`, not `%s`. Type `/claude context thread` or `/claude context file src/main.rs`", given)}, nil
	default:
		return &model.CommandResponse{ResponseType: model.CommandResponseTypeEphemeral,
			Text: fmt.Sprintf("Unknown subcommand `%s`. Try `/claude help`.", sub)}, nil
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (p *refPlugin) ServeHTTP(_ *plugin.Context, w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path == "/api/v1/health" && r.Method == http.MethodGet {
		writeJSON(w, 200, map[string]string{"status": "ok"})
		return
	}
	user := r.Header.Get("Mattermost-User-Id")
	if user == "" {
		writeJSON(w, 401, map[string]string{"error": "not authorized"})
		return
	}
	if !p.diag || !strings.HasPrefix(path, "/api/v1/diag/") {
		writeJSON(w, 404, map[string]string{"error": "not found"})
		return
	}
	switch {
	case path == "/api/v1/diag/request":
		writeJSON(w, 200, map[string]any{
			"method": r.Method, "path": path, "query": r.URL.Query(), "headers": r.Header, "user_id": user,
		})
	case path == "/api/v1/diag/echo" && r.Method == http.MethodPost:
		status := 200
		if s := r.URL.Query().Get("status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		w.Header().Set("X-Diag", "echo")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(status)
		buf := make([]byte, 64*1024)
		_, _ = io.CopyBuffer(w, r.Body, buf)
	case path == "/api/v1/diag/download" && r.Method == http.MethodGet:
		n, err := strconv.Atoi(r.URL.Query().Get("bytes"))
		if err != nil || n < 0 {
			writeJSON(w, 400, map[string]string{"error": "bytes"})
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.WriteHeader(200)
		buf := make([]byte, 64*1024)
		for off := 0; off < n; {
			c := min(len(buf), n-off)
			for i := 0; i < c; i++ {
				buf[i] = byte((off + i) % 251)
			}
			if _, err := w.Write(buf[:c]); err != nil {
				return
			}
			off += c
		}
	case path == "/api/v1/diag/kv" && r.Method == http.MethodGet:
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		perPage, err := strconv.Atoi(r.URL.Query().Get("per_page"))
		if err != nil {
			perPage = 100
		}
		keys, appErr := p.API.KVList(page, perPage)
		if appErr != nil {
			writeJSON(w, 500, map[string]string{"error": appErr.Error()})
			return
		}
		sort.Strings(keys)
		if keys == nil {
			keys = []string{}
		}
		writeJSON(w, 200, map[string]any{"keys": keys})
	case strings.HasPrefix(path, "/api/v1/diag/kv/"):
		p.serveKV(w, r, strings.TrimPrefix(path, "/api/v1/diag/kv/"))
	default:
		writeJSON(w, 404, map[string]string{"error": "not found"})
	}
}

func (p *refPlugin) serveKV(w http.ResponseWriter, r *http.Request, key string) {
	if k, ok := strings.CutSuffix(key, "/cas"); ok && r.Method == http.MethodPost {
		var req struct {
			Old []byte `json:"old"`
			New []byte `json:"new"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, 400, map[string]string{"error": err.Error()})
			return
		}
		ok, appErr := p.API.KVCompareAndSet(k, req.Old, req.New)
		if appErr != nil {
			writeJSON(w, 500, map[string]string{"error": appErr.Error()})
			return
		}
		writeJSON(w, 200, map[string]bool{"ok": ok})
		return
	}
	switch r.Method {
	case http.MethodPut:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeJSON(w, 400, map[string]string{"error": err.Error()})
			return
		}
		if appErr := p.API.KVSet(key, body); appErr != nil {
			writeJSON(w, 500, map[string]string{"error": appErr.Error()})
			return
		}
		w.WriteHeader(204)
	case http.MethodGet:
		v, appErr := p.API.KVGet(key)
		if appErr != nil {
			writeJSON(w, 500, map[string]string{"error": appErr.Error()})
			return
		}
		if v == nil {
			writeJSON(w, 404, map[string]string{"error": "no such key"})
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(200)
		_, _ = w.Write(v)
	case http.MethodDelete:
		_ = p.API.KVDelete(key)
		w.WriteHeader(204)
	default:
		writeJSON(w, 405, map[string]string{"error": "method"})
	}
}

// exitWhenHostGone: go-plugin's Go server keeps serving its listener after the host's
// connection closes, so a crashed host leaves Go plugins behind. The Rust plugin exits on
// yamux EOF; to hold the reference to the same check, watch our own socket fds (listener +
// host connection) and exit once the connection's fd is gone (yamux closes it on EOF).
func exitWhenHostGone() {
	maxSeen := 0
	for {
		time.Sleep(100 * time.Millisecond)
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return
		}
		n := 0
		for _, e := range entries {
			if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
				n++
			}
		}
		if n > maxSeen {
			maxSeen = n
		}
		if maxSeen >= 2 && n < maxSeen {
			os.Exit(0)
		}
	}
}

func main() {
	if os.Getenv(cookieKey) != cookieValue {
		fmt.Fprintln(os.Stderr, "claude-code (Go reference): this binary is a Mattermost plugin; it is started by the Mattermost server.")
		os.Exit(1)
	}
	go exitWhenHostGone()
	plugin.ClientMain(&refPlugin{})
}
