package realserver

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

// Issue 12, "a ping when you are needed" and "queue visible", on the real server.

// mentionsOf is the user ids a `posted` event says the post mentions for its receiver (the
// server fills `mentions` per receiving user; absent when it mentions them not).
func mentionsOf(ev *model.WebSocketEvent) []string {
	s, _ := ev.GetData()["mentions"].(string)
	var ids []string
	if s != "" {
		_ = json.Unmarshal([]byte(s), &ids)
	}
	return ids
}

// A card's post mentions the owner (who decides with WhoCanApprove=owner) and no one else:
// the server tells the owner's websocket that the post mentions them, and the member's that it
// does not.
func (w *world) stepCardMentionsTheApprover(t *testing.T) {
	ownerMark, memberMark := w.owner.mark(), w.member.mark()
	name := "mention-" + steps.RandHex(3) + ".txt"
	card, before := w.pendingWrite(t, name, "ping\n")
	if !strings.Contains(card.Message, "@"+w.owner.name) || strings.Count(card.Message, "@") != 1 {
		t.Errorf("the card's message %q does not mention exactly @%s", card.Message, w.owner.name)
	}
	postedCard := func(ev *model.WebSocketEvent) bool {
		p := postOf(ev)
		return p != nil && p.Id == card.Id
	}
	ev := w.owner.waitEvent(ownerMark, model.WebsocketEventPosted, postTimeout, postedCard)
	if ev == nil {
		t.Fatalf("the owner's websocket got no posted event for the card within %v", postTimeout)
	}
	if got := mentionsOf(ev); !slices.Equal(got, []string{w.owner.user.Id}) {
		t.Errorf("the owner's posted event for the card mentions %v, want [%s] (the owner)", got, w.owner.user.Id)
	}
	ev = w.member.waitEvent(memberMark, model.WebsocketEventPosted, postTimeout, postedCard)
	if ev == nil {
		t.Fatalf("the member's websocket got no posted event for the card within %v", postTimeout)
	}
	if got := mentionsOf(ev); len(got) != 0 {
		t.Errorf("the member's posted event for the card mentions %v, want none", got)
	}
	if _, err := w.click(w.owner, card, "approve"); err != nil {
		t.Fatalf("owner's Approve: %v", err)
	}
	w.waitClosed(t, card, postTimeout, "Approved")
	w.waitDone(t, before, "the approved turn")
}

// Two prompts sent while a turn runs wait in order, the thread says so, and each says when it
// starts; the model gets them one after the other.
func (w *world) stepQueueVisible(t *testing.T) {
	tag := steps.RandHex(4)
	first, second, third := "QFIRST-"+tag, "QSECOND-"+tag, "QTHIRD-"+tag
	answer2, answer3 := "ANSWER-TWO-"+tag, "ANSWER-THREE-"+tag
	words := make([]string, 0, 60)
	for i := range 60 {
		words = append(words, fmt.Sprintf("slow%02d", i))
	}
	w.script(t, "queue",
		fakemodel.TextTurn("The long answer: "+strings.Join(words, " "), 80),
		fakemodel.TextTurn(answer2, 0),
		fakemodel.TextTurn(answer3, 0))
	before := postIDs(w.threadPosts(t))
	mark, wsMark := w.model.Mark(), w.member.mark()
	w.mustSay(t, w.owner, w.channel, "/claude Take your time "+first)
	w.waitModelSaw(t, mark, turnTimeout, first)
	for _, q := range []string{second, third} {
		if _, _, err := w.member.client.CreatePost(w.ctx, &model.Post{ChannelId: w.channel.Id, RootId: w.rootPostID, Message: "And then " + q}); err != nil {
			t.Fatal(err)
		}
	}
	// Both queued prompts answered.
	if !steps.Poll(turnTimeout, func() bool {
		for _, p := range w.newBotPosts(t, before, false) {
			if strings.Contains(p.Message, answer3) && steps.HasDoneLine(p.Message) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the second queued prompt was not answered within %v; new bot posts: %s", turnTimeout, describe(w.newBotPosts(t, before, false)))
	}
	// The member saw each queue line appear as queued, in order.
	var queued []string
	for _, ev := range w.member.eventsSince(wsMark, model.WebsocketEventPosted) {
		if p := postOf(ev); p != nil && p.UserId == w.botID && strings.HasPrefix(p.Message, "⏳ Queued") {
			queued = append(queued, p.Message)
		}
	}
	want := []string{"⏳ Queued (1st): And then " + second, "⏳ Queued (2nd): And then " + third}
	if !slices.Equal(queued, want) {
		t.Errorf("queue lines posted %q, want %q", queued, want)
	}
	// They now say that they started.
	var started []string
	for _, p := range w.newBotPosts(t, before, false) {
		if strings.HasPrefix(p.Message, "▶ Started") {
			started = append(started, p.Message)
		}
	}
	want = []string{"▶ Started (was queued 1st): And then " + second, "▶ Started (was queued 2nd): And then " + third}
	if !slices.Equal(started, want) {
		t.Errorf("queue lines now read %q, want %q", started, want)
	}
	// In order: the model had answered the second before it saw the third.
	for _, r := range w.model.Since(mark) {
		if strings.Contains(r.Text, third) && !strings.Contains(r.Text, answer2) {
			t.Errorf("the model saw the third prompt before it answered the second")
			break
		}
		if strings.Contains(r.Text, second) && !strings.Contains(r.Text, "slow59") {
			t.Errorf("the model saw the second prompt before the first turn ended")
			break
		}
	}
	// /claude status lists nothing queued any more.
	if a := w.mustSay(t, w.owner, w.channel, "/claude status"); strings.Contains(a.text(), "Queued") {
		t.Errorf("status after the queue ran: %q", a.text())
	}
}
