// Package steps holds what the Go scenarios share (chatscenario on Mattermost's host code,
// realserver on a real server): counted steps for the closing "N passed, M failed" line,
// polling, and reading the posts the plugin makes as a client sees them.
package steps

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// Counter counts a scenario's named steps.
type Counter struct{ passed, failed atomic.Int64 }

// Check runs one named, counted step.
func (c *Counter) Check(t *testing.T, name string, fn func(t *testing.T)) bool {
	return t.Run(name, func(t *testing.T) {
		t.Cleanup(func() {
			if t.Failed() {
				c.failed.Add(1)
			} else {
				c.passed.Add(1)
			}
		})
		fn(t)
	})
}

// Summary is the closing line the CI log is read for: "<name>: N passed, M failed".
func (c *Counter) Summary(name string) string {
	return fmt.Sprintf("%s: %d passed, %d failed", name, c.passed.Load(), c.failed.Load())
}

// Poll calls cond every 100 ms until it holds or d passes.
func Poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RandHex is n random bytes in hex: markers that cannot collide between steps or runs.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Attachments decodes Props["attachments"], whatever Go type delivered it (the typed list over
// gob, JSON maps from the REST API or the database).
func Attachments(props map[string]any) []*model.SlackAttachment {
	raw, ok := props["attachments"]
	if !ok || raw == nil {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil
	}
	var out []*model.SlackAttachment
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	return out
}

// Actions are the buttons of a post's attachments.
func Actions(props map[string]any) []*model.PostAction {
	var out []*model.PostAction
	for _, a := range Attachments(props) {
		if a != nil {
			for _, act := range a.Actions {
				if act != nil {
					out = append(out, act)
				}
			}
		}
	}
	return out
}

// Shown is everything a post shows: its message and its attachments' texts.
func Shown(message string, props map[string]any) string {
	var sb strings.Builder
	sb.WriteString(message)
	for _, a := range Attachments(props) {
		if a == nil {
			continue
		}
		for _, f := range []string{a.Pretext, a.Title, a.Text, a.Fallback, a.Footer} {
			sb.WriteString("\n" + f)
		}
		for _, fld := range a.Fields {
			if fld != nil {
				fmt.Fprintf(&sb, "\n%s %v", fld.Title, fld.Value)
			}
		}
	}
	return sb.String()
}

// HasDoneLine says whether a turn's post carries its closing "✓ Done" line.
func HasDoneLine(msg string) bool {
	for _, l := range strings.Split(msg, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "✓ Done") {
			return true
		}
	}
	return false
}

// DescribePosts lists posts for a failure message: id, author, root and the message (cut at
// 300 bytes); "none" for no post.
func DescribePosts(ps []*model.Post) string {
	if len(ps) == 0 {
		return "none"
	}
	var parts []string
	for _, p := range ps {
		m := p.Message
		if len(m) > 300 {
			m = m[:300] + "…"
		}
		parts = append(parts, fmt.Sprintf("[%s user=%s root=%s] %q", p.Id, p.UserId, p.RootId, m))
	}
	return strings.Join(parts, "; ")
}
