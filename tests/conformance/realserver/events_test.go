package realserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"
)

// Issue 10's live events on the real server: received over the real websocket by a channel
// member, numbered without gap through a turn with an approval, and replayed after a reconnect.

// tap is a websocket of p's that keeps the plugin's live events, closed with the step.
func (w *world) tap(t *testing.T, p *person) *LiveTap {
	t.Helper()
	lt, err := NewLiveTap(w.srv.URL, p.client.AuthToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lt.Close)
	return lt
}

func names(evs []LiveEvent) []string {
	var out []string
	for _, e := range evs {
		n := fmt.Sprintf("%d:%s", e.Seq, e.Name)
		if ph := e.Str("phase"); ph != "" {
			n += "/" + ph
		}
		if st := e.Str("state"); st != "" {
			n += "/" + st
		}
		out = append(out, n)
	}
	return out
}

// checkNumbered: the events are the session's seqs from first on, each once, in arrival order,
// with flat payloads carrying session_id, seq, at and event.
func checkNumbered(t *testing.T, evs []LiveEvent, first int64, session string) {
	t.Helper()
	for i, e := range evs {
		if e.Seq != first+int64(i) {
			t.Errorf("event %d of the turn has seq %d, want %d (strictly consecutive, in order): %v", i, e.Seq, first+int64(i), names(evs))
			return
		}
		if bad := NotFlat(e.Data); len(bad) > 0 {
			t.Errorf("event %d:%s has nested values in %v: %v", e.Seq, e.Name, bad, e.Data)
		}
		if _, ok := e.Data["at"].(float64); !ok || e.SessionID != session || e.Str("event") != e.Name {
			t.Errorf("event %d:%s lacks session_id/at/event: %v", e.Seq, e.Name, e.Data)
		}
	}
}

// matcher is one expected event of an ordered list.
type matcher struct {
	what string
	ok   func(LiveEvent) bool
}

func named(name string, fields ...string) matcher {
	what := name + fmt.Sprint(fields)
	return matcher{what, func(e LiveEvent) bool {
		if e.Name != name {
			return false
		}
		for i := 0; i+1 < len(fields); i += 2 {
			if e.Str(fields[i]) != fields[i+1] {
				return false
			}
		}
		return true
	}}
}

// inOrder finds each matcher after the previous one's event; it returns the index of each, or
// fails naming the first one missing.
func inOrder(t *testing.T, evs []LiveEvent, want ...matcher) []int {
	t.Helper()
	var at []int
	i := 0
	for _, m := range want {
		for i < len(evs) && !m.ok(evs[i]) {
			i++
		}
		if i == len(evs) {
			t.Errorf("no %s event after %v in %v", m.what, at, names(evs))
			return nil
		}
		at = append(at, i)
		i++
	}
	return at
}

// A whole turn with an approval over the websocket, decided through the API: every event once,
// numbered without gap, in order; the card shows the API's decision and refuses a second one.
func (w *world) stepLiveEventsApproval(t *testing.T) {
	s := w.settled(t)
	tap := w.tap(t, w.member)
	mark := tap.Mark()
	name := "api-events-" + steps.RandHex(3) + ".txt"
	w.script(t, "live-events",
		map[string]any{"kind": "message", "delay_ms": 30, "blocks": []any{
			map[string]any{"type": "text", "text": "Let me write the events file now."},
			map[string]any{"type": "tool_use", "id": "toolu_scn_" + steps.RandHex(8), "name": "Write",
				"input": map[string]any{"file_path": w.project + "/" + name, "content": "events\n"}}}},
		fakemodel.TextTurn("Wrote the events file, all done.", 30))
	before := postIDs(w.threadPosts(t))
	var prompt struct {
		PromptID string `json:"prompt_id"`
	}
	if err := w.call(t, w.api(w.owner), http.StatusAccepted, "POST", "/sessions/"+s.ID+"/prompt",
		map[string]string{"text": "Please write " + name}).JSON(&prompt); err != nil {
		t.Fatal(err)
	}
	// The card and the approvals list name the request; whatever the events say, it is decided
	// below, so a failing check does not leave the session waiting for the next steps.
	card := w.waitCard(t, before)
	var list struct {
		Approvals []map[string]any `json:"approvals"`
	}
	if err := w.call(t, w.api(w.member), http.StatusOK, "GET", "/sessions/"+s.ID+"/approvals", nil).JSON(&list); err != nil {
		t.Error(err)
	}
	var approvalID string
	for _, a := range list.Approvals {
		if a["state"] == "pending" {
			approvalID, _ = a["approval_id"].(string)
		}
	}
	evs, ok := tap.Wait(10*time.Second, mark, s.ID, HasEvent("approval", "phase", "requested"))
	if !ok {
		t.Errorf("the card is posted but no approval requested event arrived within 10 s: %v", names(evs))
	}
	for _, e := range evs {
		if e.Name == "approval" && e.Str("phase") == "requested" {
			if e.Str("approval_id") != approvalID || !strings.Contains(e.Str("input"), name) || e.Str("tool") != "Write" {
				t.Errorf("approval requested %v: want approval %s (GET approvals), the Write of %s", e.Data, approvalID, name)
			}
		}
	}
	if approvalID == "" {
		_, _ = w.click(w.owner, card, "approve")
		t.Fatalf("GET approvals lists no pending approval while the card waits: %v", list.Approvals)
	}
	decide := "/sessions/" + s.ID + "/approvals/" + approvalID
	w.call(t, w.api(w.member), http.StatusForbidden, "POST", decide, map[string]string{"decision": "approve"})
	w.call(t, w.api(w.outsider), http.StatusNotFound, "POST", decide, map[string]string{"decision": "approve"})
	r := w.call(t, w.api(w.owner), http.StatusOK, "POST", decide, map[string]string{"decision": "approve"})
	if r.Status != http.StatusOK {
		_, _ = w.click(w.owner, card, "approve")
		t.Fatalf("the API did not decide; approved with the card so that the session goes on")
	}
	if a := approvalOf(r.Body); a["state"] != "approved" || a["decided_by"] != w.owner.user.Id {
		t.Errorf("the decision answered %s; want state approved, decided_by the owner", r)
	}
	w.call(t, w.api(w.owner), http.StatusConflict, "POST", decide, map[string]string{"decision": "deny"})
	w.waitClosed(t, card, postTimeout, "Approved", "@owner")
	if _, err := w.click(w.owner, card, "approve"); err == nil {
		t.Logf("the server accepted a click on the closed card's old button; the plugin must ignore it")
	}
	evs, ok = tap.Wait(turnTimeout, mark, s.ID, HasEvent("turn", "prompt_id", prompt.PromptID))
	if !ok {
		t.Fatalf("no turn event for prompt %s within %v: %v", prompt.PromptID, turnTimeout, names(evs))
	}
	time.Sleep(2 * time.Second) // the last status event, and a second decision if one slipped through
	evs = tap.Since(mark, s.ID)
	t.Logf("events of the turn: %v", names(evs))
	checkNumbered(t, evs, s.LastSeq+1, s.ID)
	at := inOrder(t, evs,
		named("prompt", "prompt_id", prompt.PromptID, "author", w.owner.user.Id),
		named("message"),
		named("approval", "phase", "requested", "approval_id", approvalID),
		named("approval", "phase", "decided", "approval_id", approvalID, "by", w.owner.user.Id),
		named("tool", "phase", "result"),
		named("turn", "prompt_id", prompt.PromptID))
	if at != nil && !statusBefore(evs, at[2]) {
		t.Errorf("no status event before the approval was requested: %v", names(evs))
	}
	decided, text := 0, ""
	for _, e := range evs {
		if e.Name == "approval" && e.Str("phase") == "decided" {
			decided++
		}
		if e.Name == "message" {
			text += e.Str("text")
		}
		if e.Name == "turn" && e.Data["is_error"] != false {
			t.Errorf("turn event %v: want is_error false", e.Data)
		}
	}
	if decided != 1 {
		t.Errorf("%d approval decided events, want exactly one", decided)
	}
	for _, want := range []string{"Let me write the events file now.", "Wrote the events file, all done."} {
		if !strings.Contains(text, want) {
			t.Errorf("the message events' text %q lacks %q", text, want)
		}
	}
	if err := w.call(t, w.api(w.owner), http.StatusOK, "GET", "/sessions/"+s.ID+"/approvals", nil).JSON(&list); err != nil {
		t.Fatal(err)
	}
	if !hasApproval(list.Approvals, approvalID, "approved") {
		t.Errorf("after the second click the approval is not approved (once): %v", list.Approvals)
	}
	if b, err := os.ReadFile(filepath.Join(w.project, name)); err != nil || string(b) != "events\n" {
		t.Errorf("the approved Write: %q, %v", b, err)
	}
	w.waitDone(t, before, "the turn with live events")
}

func statusBefore(evs []LiveEvent, i int) bool {
	for _, e := range evs[:i] {
		if e.Name == "status" {
			return true
		}
	}
	return false
}

func hasApproval(list []map[string]any, id, state string) bool {
	for _, a := range list {
		if a["approval_id"] == id && a["state"] == state {
			return true
		}
	}
	return false
}

// approvalOf reads the approval a decision answers with, bare or as {"approval": …}.
func approvalOf(body []byte) map[string]any {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	if inner, ok := m["approval"].(map[string]any); ok {
		return inner
	}
	return m
}

// The websocket drops mid-turn and comes back: the events it missed, read with events?after=
// the last seq seen, and those arriving live make every seq exactly once, consecutive, the same
// as a full replay.
func (w *world) stepEventsReconnect(t *testing.T) {
	s := w.settled(t)
	tap := w.tap(t, w.member)
	mark := tap.Mark()
	words := make([]string, 0, 80)
	for i := range 80 {
		words = append(words, fmt.Sprintf("r%02d", i))
	}
	w.script(t, "reconnect", fakemodel.TextTurn("Reconnect report: "+strings.Join(words, " ")+" end.", 80))
	before := postIDs(w.threadPosts(t))
	w.call(t, w.api(w.owner), http.StatusAccepted, "POST", "/sessions/"+s.ID+"/prompt", map[string]string{"text": "Please report"})
	evs, ok := tap.Wait(turnTimeout, mark, s.ID, func(evs []LiveEvent) bool {
		n := 0
		for _, e := range evs {
			if e.Name == "message" {
				n++
			}
		}
		return n >= 3
	})
	if !ok {
		t.Fatalf("fewer than 3 message events within %v: %v", turnTimeout, names(evs))
	}
	tap.Close()
	seen := tap.Since(mark, s.ID)
	lastSeen := seen[len(seen)-1].Seq
	time.Sleep(1500 * time.Millisecond) // ~18 words stream while nobody listens
	reconnected := tap.Mark()
	if err := tap.Connect(); err != nil {
		t.Fatal(err)
	}
	missed, err := Replay(w.ctx, w.api(w.member), s.ID, lastSeen)
	if err != nil {
		t.Fatal(err)
	}
	live, ok := tap.Wait(turnTimeout, reconnected, s.ID, HasEvent("turn", "", ""))
	if !ok && !hasName(missed, "turn") {
		t.Fatalf("the turn did not end within %v after the reconnect: live %v", turnTimeout, names(live))
	}
	time.Sleep(time.Second)
	live = tap.Since(reconnected, s.ID)
	if len(missed) == 0 || len(live) > 0 && live[0].Seq == lastSeen+1 {
		t.Errorf("no event was missed while the websocket was closed for 1.5 s mid-turn: the gap this step is about did not happen")
	}
	merged := map[int64]map[string]any{}
	add := func(seq int64, data map[string]any, from string) {
		if prev, dup := merged[seq]; dup && canon(prev) != canon(data) {
			t.Errorf("seq %d differs between the websocket and the replay (%s): %s vs %s", seq, from, canon(prev), canon(data))
		}
		merged[seq] = data
	}
	for _, e := range seen {
		add(e.Seq, e.Data, "before the drop")
	}
	for _, e := range missed {
		add(int64(e["seq"].(float64)), e, "replay")
	}
	for _, e := range live {
		add(e.Seq, e.Data, "after the reconnect")
	}
	full, err := Replay(w.ctx, w.api(w.member), s.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(full) == 0 || full[0]["seq"] != float64(1) {
		t.Fatalf("a full replay does not start at seq 1: %d events", len(full))
	}
	first, last := seen[0].Seq, int64(0)
	for seq := range merged {
		last = max(last, seq)
	}
	for seq := first; seq <= last; seq++ {
		got, ok := merged[seq]
		if !ok {
			t.Errorf("seq %d is missing after the reconnect and the replay (last seen live %d)", seq, lastSeen)
			continue
		}
		if seq > int64(len(full)) {
			t.Errorf("seq %d is not in the full replay (%d events)", seq, len(full))
			continue
		}
		if want := full[seq-1]; canon(want) != canon(got) {
			t.Errorf("seq %d: merged %s, full replay %s", seq, canon(got), canon(want))
		}
	}
	for i, e := range full {
		if int64(e["seq"].(float64)) != int64(i+1) {
			t.Fatalf("the full replay is not numbered 1.. without gap: seq %v at %d", e["seq"], i)
		}
	}
	var text strings.Builder
	for seq := first; seq <= last; seq++ {
		if e := merged[seq]; e["event"] == "message" {
			text.WriteString(fmt.Sprint(e["text"]))
		}
	}
	if !strings.Contains(text.String(), strings.Join(words, " ")) {
		t.Errorf("the merged message text lost words: %q", text.String())
	}
	t.Logf("seen live before the drop up to %d, replayed %d, live after the reconnect %d (first %v), turn ended at %d",
		lastSeen, len(missed), len(live), names(live[:min(1, len(live))]), last)
	w.waitDone(t, before, "the reconnect turn")
}

func hasName(evs []map[string]any, name string) bool {
	for _, e := range evs {
		if e["event"] == name {
			return true
		}
	}
	return false
}

// canon is a payload as canonical JSON (sorted keys), to compare a websocket event with a replay.
func canon(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}
