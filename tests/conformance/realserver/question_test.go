package realserver

import (
	"slices"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"
)

// Claude asks a question (AskUserQuestion): the card has a button per option; a member who may
// not approve is refused, the owner's click answers, and the model reads the answer in the
// words the CLI forwards it with.
func (w *world) stepQuestionClick(t *testing.T) {
	question := "Which color should we use " + steps.RandHex(3) + "?"
	ask := map[string]any{"kind": "message", "blocks": []any{map[string]any{
		// An explicit id: the fake's default ids restart with every per-step server.
		"type": "tool_use", "id": "toolu_q_" + steps.RandHex(8), "name": "AskUserQuestion",
		"input": map[string]any{"questions": []any{map[string]any{
			"question": question, "header": "Color", "multiSelect": false,
			"options": []any{
				map[string]any{"label": "Blue", "description": "calm"},
				map[string]any{"label": "Red", "description": "loud"},
			},
		}}},
	}}}
	w.script(t, "question", ask, fakemodel.TextTurn("Red it is.", 0))
	before := postIDs(w.threadPosts(t))
	mark := w.model.Mark()
	w.mustSay(t, w.owner, w.channel, "/claude Ask me for a color")
	card := w.waitCard(t, before)
	if ids := actionIDs(card); !slices.Equal(ids, []string{"q0o0", "q0o1", "answer"}) {
		t.Fatalf("question card buttons %v", ids)
	}
	if _, err := w.click(w.member, card, "q0o0"); err != nil {
		t.Logf("member click: %v", err)
	}
	time.Sleep(time.Second)
	if p, _, err := w.owner.client.GetPost(w.ctx, card.Id, ""); err != nil || !isCard(p) {
		t.Fatalf("a refused click answered the question: %v", err)
	}
	if w.modelSaw(mark, `"`+question+`"="Blue"`) {
		t.Fatalf("a member's refused click reached the model")
	}
	if _, err := w.click(w.owner, card, "q0o1"); err != nil {
		t.Fatalf("owner's answer: %v", err)
	}
	w.waitClosed(t, card, postTimeout, "Answered by @owner", "Red")
	w.waitModelSaw(t, mark, turnTimeout, `"`+question+`"="Red"`)
	w.waitDone(t, before, "the answered turn")
}
