package realserver

import (
	"fmt"
	"strings"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"
)

// Issue 12 in the real browser: a question (AskUserQuestion) answered in the webapp's card and a
// plan (ExitPlanMode) sent back with feedback typed there. The runner clicks; this file scripts
// the model and checks, in the model's next request, the tool_result the CLI made of the answer.

// askWant is what one phase's tool_use must be answered with in the model's next request.
type askWant struct {
	id   string // the tool_use id the model gave the request
	mark int    // the model's request log before the phase's prompt
	// question: the tool_result's whole text; plan: the feedback the error result must carry.
	text string
}

// answersLine is the tool_result the CLI gives the model when every answer is an option's label
// (a multiple choice's labels joined by ", "): see claude-cli-protocol.md "Questions, plans and
// images"; pairs are (question, answer) in the questions' order.
func answersLine(pairs ...[2]string) string {
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = `"` + p[0] + `"="` + p[1] + `"` // the CLI's own quoting: none escaped
	}
	return "Your questions have been answered: " + strings.Join(parts, ", ") + ". You can now continue with these answers in mind."
}

func option(label, description string) map[string]any {
	return map[string]any{"label": label, "description": description}
}

// askTurn is a model message calling tool with input under an explicit id (the fake's default
// ids restart with every per-step server and must be unique in the conversation).
func askTurn(tool, id string, input map[string]any) map[string]any {
	return map[string]any{"kind": "message", "blocks": []any{map[string]any{"type": "tool_use", "id": id, "name": tool, "input": input}}}
}

// scriptQuestion: one single-choice and one multiple-choice question; the runner picks what this
// answers (the second single option, two multiple ones that are not neighbours).
func (r *browserRun) scriptQuestion() browserReply {
	tag := steps.RandHex(3)
	// Plain texts (the README shows this card): the run's channel has no other question.
	single := "Which colour should the banner use?"
	multi := "Which toppings go on the pizza?"
	id := "toolu_bq_" + steps.RandHex(8)
	done := "Answers noted " + tag + "."
	r.w.script(r.t, "browser-question", askTurn("AskUserQuestion", id, map[string]any{"questions": []any{
		map[string]any{"question": single, "header": "Colour", "multiSelect": false,
			"options": []any{option("Blue", "calm"), option("Red", "loud"), option("Green", "fresh")}},
		map[string]any{"question": multi, "header": "Toppings", "multiSelect": true,
			"options": []any{option("Cheese", "melted"), option("Olives", "salty"), option("Basil", "fresh leaves")}},
	}}), fakemodel.TextTurn(done, 0))
	pick, picks := "Red", []string{"Cheese", "Basil"}
	r.asks["question"] = askWant{id: id, mark: r.w.model.Mark(), text: answersLine([2]string{single, pick}, [2]string{multi, strings.Join(picks, ", ")})}
	return ok(map[string]any{
		"single": map[string]any{"question": single, "pick": pick},
		"multi":  map[string]any{"question": multi, "picks": picks},
		"done":   done,
	})
}

// scriptPlan: the model asks to leave plan mode (no plan file: the input is `{}` as the CLI
// sends it then), and after the answer says it plans on.
func (r *browserRun) scriptPlan() browserReply {
	tag := steps.RandHex(3)
	id := "toolu_bp_" + steps.RandHex(8)
	feedback := "FEEDBACK-" + tag + " also cover the empty greeting"
	done := "Back to planning " + tag + "."
	r.w.script(r.t, "browser-plan", askTurn("ExitPlanMode", id, map[string]any{}), fakemodel.TextTurn(done, 0))
	r.asks["plan"] = askWant{id: id, mark: r.w.model.Mark(), text: feedback}
	return ok(map[string]any{"feedback": feedback, "done": done})
}

// checkAsk waits for the tool_result of the phase's request in the model's requests.
func (r *browserRun) checkAsk(phase string) error {
	want, found := r.asks[phase]
	if !found {
		return fmt.Errorf("phase %q was not scripted", phase)
	}
	var got fakemodel.ToolResult
	if !steps.Poll(turnTimeout, func() bool {
		got, found = r.w.model.ToolResult(want.mark, want.id)
		return found
	}) {
		return fmt.Errorf("the model's requests after the %s never answer its tool_use %s (%d requests)", phase, want.id, len(r.w.model.Since(want.mark)))
	}
	switch phase {
	case "question":
		if got.IsError || got.Text != want.text {
			return fmt.Errorf("the model was told (error %v) %q, want %q", got.IsError, got.Text, want.text)
		}
	case "plan":
		// Keep planning is a denial whose message is the feedback (the REST API may say who sent it).
		if !got.IsError || !strings.Contains(got.Text, want.text) {
			return fmt.Errorf("the model was told (error %v) %q, want an error carrying the feedback %q", got.IsError, got.Text, want.text)
		}
	}
	return nil
}
