package realserver

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

// Issue 12 item 7 on the real server: a channel's session in a git worktree of its own
// (`/claude start <repo> --worktree`). An approved Write lands in the worktree only, not in the
// repository's main checkout; `stop --clean` refuses the uncommitted file, `--clean --force`
// removes the worktree from disk and from git's list.

// worktreeSession is a session as GET /sessions shows it, with its worktree.
type worktreeSession struct {
	ID         string `json:"id"`
	ChannelID  string `json:"channel_id"`
	RootPostID string `json:"root_post_id"`
	Worktree   *struct {
		Path       string `json:"path"`
		Branch     string `json:"branch"`
		Repository string `json:"repository"`
		Removed    bool   `json:"removed"`
	} `json:"worktree"`
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=e2e", "-c", "user.email=e2e@e2e.test"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v in %s: %v: %s", args, dir, err, out)
	}
	return string(out)
}

func (w *world) stepWorktree(t *testing.T) {
	repo := filepath.Join(w.roots, "wt-"+steps.RandHex(3))
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "README.md"), []byte("# worktrees\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, repo, "init", "-q", "-b", "main")
	gitIn(t, repo, "add", ".")
	gitIn(t, repo, "commit", "-q", "-m", "start")
	ch, _, err := w.owner.client.CreateChannel(w.ctx, &model.Channel{TeamId: w.team.Id,
		Name: "worktree-" + steps.RandHex(3), DisplayName: "worktree", Type: model.ChannelTypeOpen})
	if err != nil {
		t.Fatal(err)
	}
	w.mustSay(t, w.owner, ch, "/claude start "+repo+" --worktree", "a git worktree of", "on branch `claude/worktree-")

	var list struct {
		Sessions []worktreeSession `json:"sessions"`
	}
	if err := w.call(t, w.api(w.owner), http.StatusOK, "GET", "/sessions", nil).JSON(&list); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(list.Sessions, func(s worktreeSession) bool { return s.ChannelID == ch.Id })
	if i < 0 || list.Sessions[i].Worktree == nil || list.Sessions[i].RootPostID == "" {
		t.Fatalf("GET /sessions shows no worktree session with a thread in %s: %+v", ch.Name, list.Sessions)
	}
	s := list.Sessions[i]
	wt := s.Worktree.Path
	if !strings.Contains(gitIn(t, repo, "worktree", "list", "--porcelain"), "worktree "+wt+"\n") {
		t.Fatalf("git does not list the session's worktree %s", wt)
	}

	// The card helpers read the world's session thread; this step's thread stands in for it.
	main := w.rootPostID
	w.rootPostID = s.RootPostID
	defer func() { w.rootPostID = main }()
	name := "in-worktree-" + steps.RandHex(3) + ".txt"
	w.script(t, "worktree-write",
		fakemodel.WriteTurn(filepath.Join(wt, name), "from a worktree\n"),
		fakemodel.TextTurn("Wrote "+name+".", 0))
	before := postIDs(w.threadPosts(t))
	w.mustSay(t, w.owner, ch, "/claude Please create "+name)
	card := w.waitCard(t, before)
	if _, err := w.click(w.owner, card, "approve"); err != nil {
		t.Fatalf("owner's Approve: %v", err)
	}
	w.waitDone(t, before, "the approved turn in the worktree")
	if b, err := os.ReadFile(filepath.Join(wt, name)); err != nil || string(b) != "from a worktree\n" {
		t.Fatalf("the approved Write in the worktree: %q, %v", b, err)
	}
	for _, elsewhere := range []string{repo, w.project} {
		if _, err := os.Stat(filepath.Join(elsewhere, name)); err == nil {
			t.Fatalf("the Write reached %s too", elsewhere)
		}
	}

	w.mustSay(t, w.owner, ch, "/claude stop --clean", "has uncommitted changes", "--clean --force")
	if _, err := os.Stat(filepath.Join(wt, name)); err != nil {
		t.Fatalf("a refused clean removed the work: %v", err)
	}
	w.mustSay(t, w.owner, ch, "/claude stop --clean --force", "stopped and its worktree", "removed")
	if _, err := os.Stat(wt); !os.IsNotExist(err) {
		t.Fatalf("the worktree %s is still on disk: %v", wt, err)
	}
	if strings.Contains(gitIn(t, repo, "worktree", "list", "--porcelain"), wt) {
		t.Fatalf("git still lists the removed worktree %s", wt)
	}
	w.mustSay(t, w.owner, ch, "/claude status", "(removed)")
}
