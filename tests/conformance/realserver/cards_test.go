package realserver

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

// Posts, cards and model turns as people and the fake model see them.

// actionIDs are the ids of a post's buttons.
func actionIDs(p *model.Post) []string {
	var ids []string
	for _, a := range steps.Actions(p.GetProps()) {
		ids = append(ids, a.Id)
	}
	return ids
}

func isCard(p *model.Post) bool { return len(actionIDs(p)) > 0 }

// shown is everything a post shows.
func shown(p *model.Post) string { return steps.Shown(p.Message, p.GetProps()) }

func postIDs(ps []*model.Post) map[string]bool {
	m := map[string]bool{}
	for _, p := range ps {
		m[p.Id] = true
	}
	return m
}

// newBotPosts are the bot's thread posts not in before, cards or not.
func (w *world) newBotPosts(t *testing.T, before map[string]bool, cards bool) []*model.Post {
	var out []*model.Post
	for _, p := range w.threadPosts(t) {
		if p.UserId == w.botID && !before[p.Id] && isCard(p) == cards {
			out = append(out, p)
		}
	}
	return out
}

// waitDone waits for a new bot reply in the thread with a "✓ Done" line.
func (w *world) waitDone(t *testing.T, before map[string]bool, what string) *model.Post {
	t.Helper()
	var done *model.Post
	if !steps.Poll(turnTimeout, func() bool {
		for _, p := range w.newBotPosts(t, before, false) {
			if steps.HasDoneLine(p.Message) {
				done = p
				return true
			}
		}
		return false
	}) {
		t.Fatalf("%s: no bot reply with a \"✓ Done\" line within %v; new bot posts: %s",
			what, turnTimeout, describe(w.newBotPosts(t, before, false)))
	}
	return done
}

// waitCard waits for a new approval card in the thread.
func (w *world) waitCard(t *testing.T, before map[string]bool) *model.Post {
	t.Helper()
	var card *model.Post
	if !steps.Poll(turnTimeout, func() bool {
		if cs := w.newBotPosts(t, before, true); len(cs) > 0 {
			card = cs[0]
			return true
		}
		return false
	}) {
		t.Fatalf("no approval card within %v; new bot posts: %s", turnTimeout, describe(w.newBotPosts(t, before, false)))
	}
	return card
}

// waitClosed waits until the card has no buttons and shows want.
func (w *world) waitClosed(t *testing.T, card *model.Post, d time.Duration, want ...string) *model.Post {
	t.Helper()
	var now *model.Post
	if !steps.Poll(d, func() bool {
		p, _, err := w.owner.client.GetPost(w.ctx, card.Id, "")
		if err != nil {
			return false
		}
		now = p
		if isCard(p) {
			return false
		}
		for _, s := range want {
			if !strings.Contains(shown(p), s) {
				return false
			}
		}
		return true
	}) {
		got := "(unreadable)"
		if now != nil {
			got = fmt.Sprintf("buttons %v, shows %q", actionIDs(now), shown(now))
		}
		t.Fatalf("card %s not closed with %q within %v: %s", card.Id, want, d, got)
	}
	return now
}

func describe(ps []*model.Post) string {
	var sb strings.Builder
	for _, p := range ps {
		msg := shown(p)
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		fmt.Fprintf(&sb, "\n  [%s user=%s root=%s buttons=%v] %q", p.Id, p.UserId, p.RootId, actionIDs(p), msg)
	}
	if sb.Len() == 0 {
		return "(none)"
	}
	return sb.String()
}

// script starts the fake model on the turns of one step.
func (w *world) script(t *testing.T, name string, turns ...map[string]any) {
	t.Helper()
	if err := w.model.Start(name, turns); err != nil {
		t.Fatal(err)
	}
}

// waitModelSaw waits for a model request after mark that contains every want.
func (w *world) waitModelSaw(t *testing.T, mark int, d time.Duration, want ...string) {
	t.Helper()
	if !steps.Poll(d, func() bool {
		for _, r := range w.model.Since(mark) {
			all := true
			for _, s := range want {
				all = all && strings.Contains(r.Text, s)
			}
			if all {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the model received no request containing %q within %v (%d requests)", want, d, len(w.model.Since(mark)))
	}
}

// modelSaw says whether any request after mark contains s.
func (w *world) modelSaw(mark int, s string) bool {
	for _, r := range w.model.Since(mark) {
		if strings.Contains(r.Text, s) {
			return true
		}
	}
	return false
}

// pendingWrite prompts a Write of name and returns its card (the model then says "done") and
// the thread as it was before the prompt (the turn's reply post comes after it).
func (w *world) pendingWrite(t *testing.T, name, content string) (*model.Post, map[string]bool) {
	t.Helper()
	w.script(t, "write-"+name,
		fakemodel.WriteTurn(w.project+"/"+name, content),
		fakemodel.TextTurn("Wrote "+name+".", 0))
	before := postIDs(w.threadPosts(t))
	w.mustSay(t, w.owner, w.channel, "/claude Please create "+name)
	return w.waitCard(t, before), before
}

// click presses a card's button as p, through the server as a client does.
func (w *world) click(p *person, card *model.Post, action string) (*model.Response, error) {
	return p.client.DoPostAction(w.ctx, card.Id, action)
}
