package chatscenario

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

func sampleCard() *model.Post {
	var actions []*model.PostAction
	for _, id := range []string{"approve", "approvesession", "deny", "denyreason", "editapprove"} {
		actions = append(actions, &model.PostAction{Id: id, Name: id, Integration: &model.PostActionIntegration{
			URL: approvalURL, Context: map[string]any{"session_id": "s1", "request_id": "r1", "action": id,
				"expires_at": "99", "sig": "00ff"}}})
	}
	p := &model.Post{Id: "card", Message: "Claude wants to use **Write** on `hello.txt`"}
	p.AddProp("attachments", []*model.SlackAttachment{{Text: "diff", Actions: actions}})
	return p
}

// The helpers read cards whatever Go type the props arrive as (typed slice or decoded JSON).
func TestHelpersReadCards(t *testing.T) {
	typed := sampleCard()
	if !isCard(typed) || len(steps.Actions(typed.GetProps())) != 5 {
		t.Fatal("typed attachments not read")
	}
	checkCard(t, typed, "Write", "hello.txt")
	asMaps := map[string]any{"attachments": []any{map[string]any{"text": "✅ Approved by @owner", "actions": []any{}}}}
	if len(steps.Actions(asMaps)) != 0 || !strings.Contains(steps.Shown("", asMaps), "Approved") {
		t.Fatal("map attachments not read")
	}
	if steps.Attachments(map[string]any{"attachments": "garbage"}) != nil {
		t.Fatal("garbage attachments decoded")
	}
	if a := actionByID(typed, "denyreason"); a == nil || copyContext(a)["action"] != "denyreason" {
		t.Fatal("actionByID/copyContext")
	}
	c := copyContext(actionByID(typed, "approve"))
	c["request_id"] = "x"
	if actionByID(typed, "approve").Integration.Context["request_id"] != "r1" {
		t.Fatal("copyContext aliases the card's context")
	}
}

func TestHelpersText(t *testing.T) {
	if !steps.HasDoneLine("text\n\n✓ Done · 2 s · $0.01") || !steps.HasDoneLine("  ✓ Done") || steps.HasDoneLine("not ✓ Done here") {
		t.Fatal("hasDoneLine")
	}
	for _, s := range []string{"0a1b2c", "ffff", "0"} {
		f := flipHex(s)
		diff := 0
		for i := range s {
			if s[i] != f[i] {
				diff++
			}
		}
		if len(f) != len(s) || diff != 1 || strings.Trim(f, "0123456789abcdef") != "" {
			t.Fatalf("flipHex(%q) = %q", s, f)
		}
	}
	if !containsAny("state: awaiting approval", "idle", "awaiting approval") || containsAny("x", "y") {
		t.Fatal("containsAny")
	}
}

// relatedProcesses finds a process working in the project and loses it once it is gone.
func TestHelpersRelatedProcesses(t *testing.T) {
	dir, _ := filepath.EvalSymlinks(t.TempDir())
	s := &scenario{project: filepath.Join(dir, "proj"), dataDir: filepath.Join(dir, "data"), model: &fakemodel.Model{}}
	if err := os.MkdirAll(s.project, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	cmd.Dir = s.project
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if !steps.Poll(5*time.Second, func() bool { return len(s.relatedProcessesExcept(nil)) == 1 }) {
		t.Fatalf("sleep in the project not found: %v", s.relatedProcessesExcept(nil))
	}
	if pidOf(s.relatedProcessesExcept(nil)[0]) != cmd.Process.Pid {
		t.Fatal("wrong pid")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got := s.relatedProcessesExcept(nil); len(got) != 0 {
		t.Fatalf("a dead process is still related: %v", got)
	}
}
