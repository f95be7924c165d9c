package realserver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// EventPrefix starts the name of every live event the plugin publishes: the server names a
// plugin's PublishWebSocketEvent "custom_<plugin id>_<event>".
const EventPrefix = "custom_" + PluginID + "_"

// LiveEvent is one of the plugin's live events as a websocket client received it.
type LiveEvent struct {
	Name      string // without EventPrefix
	Seq       int64
	SessionID string
	Data      map[string]any
	Arrived   time.Time
}

// Str is a string field of the payload ("" when absent or not a string).
func (e LiveEvent) Str(key string) string {
	s, _ := e.Data[key].(string)
	return s
}

// LiveTap is a websocket client of the real server that keeps the plugin's live events, in the
// order they arrived. It can be closed and connected again, as a browser that loses its network.
type LiveTap struct {
	wsURL, token string

	mu     sync.Mutex
	ws     *model.WebSocketClient
	done   chan struct{}
	events []LiveEvent
}

// NewLiveTap connects to site's websocket with a user's token.
func NewLiveTap(site, token string) (*LiveTap, error) {
	lt := &LiveTap{wsURL: strings.Replace(site, "http://", "ws://", 1), token: token}
	return lt, lt.Connect()
}

// Connect opens a new websocket (after Close).
func (lt *LiveTap) Connect() error {
	ws, err := model.NewWebSocketClient4(lt.wsURL, lt.token)
	if err != nil {
		return fmt.Errorf("websocket: %w", err)
	}
	ws.Listen()
	done := make(chan struct{})
	lt.mu.Lock()
	lt.ws, lt.done = ws, done
	lt.mu.Unlock()
	go func() {
		defer close(done)
		for ev := range ws.EventChannel {
			name, ok := strings.CutPrefix(string(ev.EventType()), EventPrefix)
			if !ok {
				continue
			}
			data := ev.GetData()
			seq, _ := data["seq"].(float64)
			sid, _ := data["session_id"].(string)
			e := LiveEvent{Name: name, Seq: int64(seq), SessionID: sid, Data: data, Arrived: time.Now()}
			lt.mu.Lock()
			lt.events = append(lt.events, e)
			lt.mu.Unlock()
		}
	}()
	return nil
}

// Close ends the websocket and waits until nothing more is received.
func (lt *LiveTap) Close() {
	lt.mu.Lock()
	ws, done := lt.ws, lt.done
	lt.ws = nil
	lt.mu.Unlock()
	if ws == nil {
		return
	}
	ws.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// Mark is the number of events received so far.
func (lt *LiveTap) Mark() int {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return len(lt.events)
}

// Since are the events of one session ("": of every session) received after mark, in arrival order.
func (lt *LiveTap) Since(mark int, session string) []LiveEvent {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	var out []LiveEvent
	for _, e := range lt.events[min(mark, len(lt.events)):] {
		if session == "" || e.SessionID == session {
			out = append(out, e)
		}
	}
	return out
}

// Wait polls Since(mark, session) every 20 ms until cond holds or d passes.
func (lt *LiveTap) Wait(d time.Duration, mark int, session string, cond func([]LiveEvent) bool) ([]LiveEvent, bool) {
	deadline := time.Now().Add(d)
	for {
		evs := lt.Since(mark, session)
		if cond(evs) {
			return evs, true
		}
		if time.Now().After(deadline) {
			return evs, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// HasEvent is a Wait condition: an event named name whose field key is value ("" key: any).
func HasEvent(name, key, value string) func([]LiveEvent) bool {
	return func(evs []LiveEvent) bool {
		for _, e := range evs {
			if e.Name == name && (key == "" || e.Str(key) == value) {
				return true
			}
		}
		return false
	}
}

// NotFlat names the payload fields whose value is a JSON object or array (a payload is flat:
// strings, numbers and booleans only).
func NotFlat(data map[string]any) []string {
	var bad []string
	for k, v := range data {
		switch v.(type) {
		case map[string]any, []any:
			bad = append(bad, k)
		}
	}
	return bad
}

// Replay reads a session's stored events after a seq through GET /sessions/{id}/events, page by
// page, until the answer holds no more.
func Replay(ctx context.Context, c *APIClient, session string, after int64) ([]map[string]any, error) {
	var out []map[string]any
	for range 1000 {
		resp, err := c.Do(ctx, "GET", fmt.Sprintf("/sessions/%s/events?after=%d&limit=1000", session, after), nil)
		if err != nil {
			return nil, err
		}
		if resp.Status != 200 {
			return nil, fmt.Errorf("events?after=%d: %s", after, resp)
		}
		var page struct {
			Events  []map[string]any `json:"events"`
			LastSeq int64            `json:"last_seq"`
		}
		if err := resp.JSON(&page); err != nil {
			return nil, err
		}
		if len(page.Events) == 0 {
			return out, nil
		}
		for _, e := range page.Events {
			seq, ok := e["seq"].(float64)
			if !ok || int64(seq) <= after {
				return nil, fmt.Errorf("events?after=%d returned an event with seq %v", after, e["seq"])
			}
			after = int64(seq)
			out = append(out, e)
		}
	}
	return nil, fmt.Errorf("events?after= did not end after 1000 pages")
}
