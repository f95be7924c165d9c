package realserver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

// A direct message with the bot carries a whole session (issue 12, item 5): the owner opens
// the DM through /api/v4/channels/direct; without a session a message there is answered with
// one hint; `/claude start` binds a session to the DM; a plain message (no thread) is a prompt,
// answered in the session's thread; the approval card is clicked; the file is written; a
// system post in the DM (a header change) is not a prompt; `/claude stop` ends it. Its own
// project and DM, so the channel session's steps are untouched.
func (w *world) stepDirectMessage(t *testing.T) {
	project := filepath.Join(w.roots, "dm-"+steps.RandHex(3))
	if err := os.MkdirAll(project, 0o755); err != nil {
		t.Fatal(err)
	}
	dm, _, err := w.owner.client.CreateDirectChannel(w.ctx, w.owner.user.Id, w.botID)
	if err != nil {
		t.Fatalf("the owner's DM with the bot: %v", err)
	}
	if dm.Type != model.ChannelTypeDirect {
		t.Fatalf("channels/direct made a channel of type %q", dm.Type)
	}
	post := func(message, rootID string) *model.Post {
		t.Helper()
		p, _, err := w.owner.client.CreatePost(w.ctx, &model.Post{ChannelId: dm.Id, RootId: rootID, Message: message})
		if err != nil {
			t.Fatalf("post in the DM: %v", err)
		}
		return p
	}
	hints := func(mark int) int {
		n := 0
		for _, ev := range w.owner.eventsSince(mark, model.WebsocketEventEphemeralMessage) {
			if p := postOf(ev); p != nil && p.ChannelId == dm.Id && strings.Contains(p.Message, "/claude start <path>") {
				n++
			}
		}
		return n
	}

	// No session yet: one hint, not one per message.
	modelMark, wsMark := w.model.Mark(), w.owner.mark()
	post("EARLY-"+steps.RandHex(4)+" hello?", "")
	if !steps.Poll(postTimeout, func() bool { return hints(wsMark) > 0 }) {
		t.Fatalf("a message in the DM without a session got no hint within %v", postTimeout)
	}
	post("still there?", "")
	time.Sleep(time.Second)
	if n := hints(wsMark); n != 1 {
		t.Errorf("%d hints for two messages, want 1", n)
	}

	w.script(t, "dm-start")
	wsMark = w.owner.mark()
	w.mustSay(t, w.owner, dm, "/claude start "+project, "every message you post here is a prompt")
	ev := w.owner.waitEvent(wsMark, model.WebsocketEventPosted, postTimeout, func(ev *model.WebSocketEvent) bool {
		p := postOf(ev)
		return p != nil && p.UserId == w.botID && p.ChannelId == dm.Id && strings.Contains(p.Message, "Claude Code session started")
	})
	if ev == nil {
		t.Fatalf("no session root post in the DM within %v", postTimeout)
	}
	// The shared helpers read the session thread named here; the channel's comes back after.
	channelRoot := w.rootPostID
	w.rootPostID = postOf(ev).Id
	defer func() { w.rootPostID = channelRoot }()

	// A system post by the owner (the DM's header changed) is not a prompt.
	header := "HEADER-" + steps.RandHex(4)
	if _, _, err := w.owner.client.PatchChannel(w.ctx, dm.Id, &model.ChannelPatch{Header: model.NewPointer(header)}); err != nil {
		t.Fatalf("DM header: %v", err)
	}
	time.Sleep(time.Second)

	name := "dm-" + steps.RandHex(3) + ".txt"
	w.script(t, "dm-write",
		fakemodel.WriteTurn(project+"/"+name, "written from a DM\n"),
		fakemodel.TextTurn("Wrote "+name+" from the DM.", 0))
	before := postIDs(w.threadPosts(t))
	marker := "DM-PROMPT-" + steps.RandHex(4)
	post("Please create "+name+" "+marker, "")
	w.waitModelSaw(t, modelMark, turnTimeout, marker)
	card := w.waitCard(t, before)
	if card.ChannelId != dm.Id || card.RootId != w.rootPostID {
		t.Errorf("the card is in channel %s thread %s, want the DM %s thread %s", card.ChannelId, card.RootId, dm.Id, w.rootPostID)
	}
	if _, err := w.click(w.owner, card, "approve"); err != nil {
		t.Fatalf("owner's Approve in the DM: %v", err)
	}
	w.waitClosed(t, card, postTimeout, "Approved", "@owner")
	done := w.waitDone(t, before, "the DM prompt's turn")
	if !strings.Contains(done.Message, "from the DM.") {
		t.Errorf("the turn post reads %q", done.Message)
	}
	if b, err := os.ReadFile(filepath.Join(project, name)); err != nil || string(b) != "written from a DM\n" {
		t.Errorf("approved Write in the DM: file %q, %v", b, err)
	}
	for _, notPrompt := range []string{"EARLY-", "still there?", header, "Claude Code session started"} {
		if w.modelSaw(modelMark, notPrompt) {
			t.Errorf("%q reached the model: it is not a prompt", notPrompt)
		}
	}

	w.mustSay(t, w.owner, dm, "/claude stop", "stopped")
}
