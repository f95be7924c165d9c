package harness

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// newWorld is a fake with team t1, its open channel c1 and users u1, u2 (members of c1).
func newWorld() *FakeAPI {
	f := NewFakeAPI("")
	f.AddTeam(&model.Team{Id: "t1", Name: "team-one", Type: model.TeamOpen})
	f.AddChannel(&model.Channel{Id: "c1", TeamId: "t1", Type: model.ChannelTypeOpen, Name: "town"})
	for _, u := range []string{"u1", "u2"} {
		f.AddUser(&model.User{Id: u, Username: "user-" + u, Roles: "system_user"})
		f.AddMember("c1", u)
	}
	return f
}

func TestFakeKVCompareAndSet(t *testing.T) {
	f := NewFakeAPI("/bundle")
	// old=nil succeeds only while the key is absent.
	if ok, err := f.KVCompareAndSet("k", nil, []byte("a")); !ok || err != nil {
		t.Fatalf("CAS nil->a on absent key: %v %v", ok, err)
	}
	if ok, _ := f.KVCompareAndSet("k", nil, []byte("b")); ok {
		t.Fatal("CAS nil->b on present key succeeded")
	}
	if ok, _ := f.KVCompareAndSet("k", []byte("x"), []byte("b")); ok {
		t.Fatal("CAS with wrong old value succeeded")
	}
	if ok, _ := f.KVCompareAndSet("k", []byte("a"), []byte("b")); !ok {
		t.Fatal("CAS a->b failed")
	}
	if v, _ := f.KVGet("k"); string(v) != "b" {
		t.Fatalf("value %q", v)
	}
	// new=nil deletes.
	if ok, _ := f.KVCompareAndSet("k", []byte("b"), nil); !ok {
		t.Fatal("CAS b->nil failed")
	}
	if v, _ := f.KVGet("k"); v != nil {
		t.Fatalf("deleted key reads %q", v)
	}
	// old=nil,new=nil does nothing and reports false (store CompareAndDelete).
	if ok, _ := f.KVCompareAndSet("k", nil, nil); ok {
		t.Fatal("CAS nil->nil reported true")
	}
	if ok, _ := f.KVCompareAndSet("absent", []byte("a"), []byte("b")); ok {
		t.Fatal("CAS on absent key with old value succeeded")
	}
}

func TestFakeKVSetWithOptions(t *testing.T) {
	f := NewFakeAPI("")
	now := time.Unix(1000, 0)
	f.SetClock(func() time.Time { return now })
	if ok, err := f.KVSetWithOptions("e", []byte("v"), model.PluginKVSetOptions{ExpireInSeconds: 10}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	now = now.Add(9 * time.Second)
	if v, _ := f.KVGet("e"); string(v) != "v" {
		t.Fatalf("before expiry: %q", v)
	}
	now = now.Add(time.Second)
	if v, _ := f.KVGet("e"); v != nil {
		t.Fatalf("after expiry: %q", v)
	}
	if _, err := f.KVSetWithOptions("x", []byte("v"), model.PluginKVSetOptions{OldValue: []byte("a")}); err == nil {
		t.Fatal("OldValue without Atomic accepted")
	}
	if ok, _ := f.KVSetWithOptions("x", []byte("1"), model.PluginKVSetOptions{Atomic: true}); !ok {
		t.Fatal("atomic create failed")
	}
	if ok, _ := f.KVSetWithOptions("x", []byte("2"), model.PluginKVSetOptions{Atomic: true, OldValue: []byte("1")}); !ok {
		t.Fatal("atomic update failed")
	}
	if ok, _ := f.KVSetWithOptions("x", nil, model.PluginKVSetOptions{}); !ok {
		t.Fatal("non-atomic delete failed")
	}
	if _, ok := f.KVSnapshot()["x"]; ok {
		t.Fatal("nil value did not delete")
	}
	if err := f.KVSet("", []byte("v")); err == nil {
		t.Fatal("empty key accepted")
	}
}

func TestFakeKVListPagingAndDeleteAll(t *testing.T) {
	f := NewFakeAPI("")
	for i := 24; i >= 0; i-- {
		f.KVSet(fmt.Sprintf("key%02d", i), []byte{byte(i)})
	}
	var all []string
	for page, want := range []int{10, 10, 5, 0} {
		keys, err := f.KVList(page, 10)
		if err != nil || len(keys) != want {
			t.Fatalf("page %d: %v %v", page, keys, err)
		}
		all = append(all, keys...)
	}
	for i, k := range all {
		if k != fmt.Sprintf("key%02d", i) {
			t.Fatalf("order: %v", all)
		}
	}
	f.KVDelete("key03")
	if keys, _ := f.KVList(0, 100); len(keys) != 24 {
		t.Fatalf("after delete: %d", len(keys))
	}
	f.KVDeleteAll()
	if keys, _ := f.KVList(0, 100); len(keys) != 0 {
		t.Fatalf("after DeleteAll: %v", keys)
	}
}

func TestFakeKVConcurrentCAS(t *testing.T) {
	f := NewFakeAPI("")
	f.KVSet("c", []byte("base"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ok, _ := f.KVCompareAndSet("c", []byte("base"), []byte(fmt.Sprint(i)))
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d CAS winners", wins)
	}
}

func TestFakePostsAndThreads(t *testing.T) {
	f := newWorld()
	root, err := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Message: "root"})
	if err != nil || root.Id == "" || root.CreateAt == 0 {
		t.Fatal(root, err)
	}
	r1, _ := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", RootId: root.Id, Message: "r1"})
	r2, _ := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", RootId: root.Id, Message: "r2"})
	if r2.CreateAt <= r1.CreateAt {
		t.Fatal("timestamps not increasing")
	}
	if _, err := f.CreatePost(&model.Post{ChannelId: "c1", RootId: "nope"}); err == nil {
		t.Fatal("reply to missing root accepted")
	}
	list, err := f.GetPostThread(r1.Id)
	if err != nil || len(list.Order) != 3 || list.Order[0] != r2.Id || list.Order[2] != root.Id {
		t.Fatalf("thread %v %v", list, err)
	}
	upd := r1.Clone()
	upd.Message = "edited"
	got, err := f.UpdatePost(upd)
	if err != nil || got.Message != "edited" || got.EditAt == 0 || got.CreateAt != r1.CreateAt {
		t.Fatal(got, err)
	}
	if err := f.DeletePost(root.Id); err != nil {
		t.Fatal(err)
	}
	if _, err := f.GetPost(r2.Id); err == nil {
		t.Fatal("reply of deleted root still readable")
	}
	e := f.SendEphemeralPost("u1", &model.Post{ChannelId: "c1", Message: "eph"})
	if e.Id == "" || e.Type != model.PostTypeEphemeral {
		t.Fatal(e)
	}
	e.Message = "eph2"
	f.UpdateEphemeralPost("u1", e)
	if eps := f.EphemeralPosts(); len(eps) != 1 || eps[0].Message != "eph2" {
		t.Fatal(eps)
	}
	f.DeleteEphemeralPost("u1", e.Id)
	if eps := f.EphemeralPosts(); len(eps) != 0 {
		t.Fatal(eps)
	}
}

func TestFakeBotsUsersChannels(t *testing.T) {
	f := NewFakeAPI("/b")
	id1, err := f.EnsureBotUser(&model.Bot{Username: "claude", DisplayName: "Claude"})
	if err != nil || id1 == "" {
		t.Fatal(id1, err)
	}
	id2, _ := f.EnsureBotUser(&model.Bot{Username: "claude"})
	if id1 != id2 {
		t.Fatal("EnsureBotUser created a second bot")
	}
	if u, err := f.GetUser(id1); err != nil || !u.IsBot || u.Username != "claude" {
		t.Fatal(u, err)
	}
	if b, err := f.GetBot(id1, false); err != nil || b.Username != "claude" {
		t.Fatal(b, err)
	}
	if _, err := f.CreateBot(&model.Bot{Username: "claude"}); err == nil {
		t.Fatal("duplicate bot username accepted")
	}
	f.AddChannel(&model.Channel{Id: "c1", Type: model.ChannelTypeOpen, Name: "town"})
	f.AddMember("c1", "u1", model.PermissionCreatePost.Id)
	if _, err := f.GetChannel("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.GetChannel("c2"); err == nil {
		t.Fatal("missing channel found")
	}
	if _, err := f.GetChannelMember("c1", "u1"); err != nil {
		t.Fatal(err)
	}
	if !f.HasPermissionToChannel("u1", "c1", model.PermissionCreatePost) || f.HasPermissionToChannel("u2", "c1", model.PermissionCreatePost) {
		t.Fatal("permissions")
	}
	if p, _ := f.GetBundlePath(); p != "/b" {
		t.Fatal(p)
	}
	f.SetConfig(map[string]any{"Model": "x"})
	var cfg map[string]any
	if err := f.LoadPluginConfiguration(&cfg); err != nil || cfg["Model"] != "x" {
		t.Fatal(cfg, err)
	}
}

func TestFakeNotImplementedDoesNotPanic(t *testing.T) {
	f := NewFakeAPI("")
	if _, err := f.GetTeamIcon("t"); err == nil || err.DetailedError != "not implemented: GetTeamIcon" {
		t.Fatalf("GetTeamIcon: %v", err)
	}
	if err := f.SetProfileImage("u", nil); err == nil {
		t.Fatal("SetProfileImage returned nil")
	}
	if m := f.Missing(); len(m) != 2 || m[0] != "GetTeamIcon" {
		t.Fatal(m)
	}
	f.LogInfo("ready", "k", "v")
	f.RegisterCommand(&model.Command{Trigger: "claude"})
	f.PublishWebSocketEvent("x", map[string]any{"a": 1}, &model.WebsocketBroadcast{UserId: "u"})
	f.PublishPluginClusterEvent(model.PluginClusterEvent{Id: "e"}, model.PluginClusterEventSendOptions{})
	f.VerifyTriggerIDs(false)
	if err := f.OpenInteractiveDialog(model.OpenDialogRequest{TriggerId: "t"}); err != nil {
		t.Fatal(err)
	}
	if len(f.Commands()) != 1 || len(f.WebSocketEvents()) != 1 || len(f.ClusterEvents()) != 1 || len(f.Dialogs()) != 1 {
		t.Fatal("recording")
	}
}

func TestFakePostHistory(t *testing.T) {
	f := newWorld()
	p, appErr := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Message: "a"})
	if appErr != nil {
		t.Fatal(appErr)
	}
	for _, m := range []string{"ab", "abc"} {
		u := p.Clone()
		u.Message = m
		u.AddProp("attachments", []*model.SlackAttachment{{Text: m}})
		if _, err := f.UpdatePost(u); err != nil {
			t.Fatal(err)
		}
	}
	h := f.PostHistory(p.Id)
	if len(h) != 3 || h[0].Update || !h[1].Update || h[0].Message != "a" || h[2].Message != "abc" {
		t.Fatalf("history %+v", h)
	}
	if f.UpdateCount(p.Id) != 2 || f.UpdateCount("nope") != 0 || len(f.PostHistory("nope")) != 0 {
		t.Fatal("update counts")
	}
	// Props are independent JSON copies.
	atts, ok := h[1].Props["attachments"].([]any)
	if !ok || len(atts) != 1 || atts[0].(map[string]any)["text"] != "ab" {
		t.Fatalf("props %#v", h[1].Props)
	}
	if _, err := f.UpdatePost(&model.Post{Id: "missing"}); err == nil || f.UpdateCount("missing") != 0 {
		t.Fatal("a failed UpdatePost was recorded")
	}
}

func TestFakeMembershipPermissionsTeams(t *testing.T) {
	f := NewFakeAPI("")
	f.AddChannel(&model.Channel{Id: "c1", TeamId: "t1", Type: model.ChannelTypeOpen, Name: "town"})
	f.AddMember("c1", "member")
	if !f.HasPermissionToChannel("member", "c1", model.PermissionReadChannel) {
		t.Fatal("a member cannot read the channel")
	}
	if f.HasPermissionToChannel("outsider", "c1", model.PermissionReadChannel) {
		t.Fatal("a non-member can read the channel")
	}
	if f.HasPermissionToChannel("member", "c1", model.PermissionManagePrivateChannelMembers) {
		t.Fatal("membership grants more than channel_user")
	}
	if _, err := f.GetChannelMember("c1", "outsider"); err == nil || err.StatusCode != http.StatusNotFound {
		t.Fatalf("GetChannelMember for a non-member: %v", err)
	}
	f.GrantPermission("outsider", "c1", model.PermissionReadChannel.Id)
	if !f.HasPermissionToChannel("outsider", "c1", model.PermissionReadChannel) {
		t.Fatal("explicit grant ignored")
	}
	f.RemoveMember("c1", "member")
	if f.HasPermissionToChannel("member", "c1", model.PermissionReadChannel) {
		t.Fatal("a removed member can still read")
	}
	f.AddTeam(&model.Team{Id: "t1", Name: "team-one", DisplayName: "Team One"})
	if tm, err := f.GetTeam("t1"); err != nil || tm.Name != "team-one" {
		t.Fatal(tm, err)
	}
	if tm, err := f.GetTeamByName("team-one"); err != nil || tm.Id != "t1" {
		t.Fatal(tm, err)
	}
	if _, err := f.GetTeam("t2"); err == nil {
		t.Fatal("missing team found")
	}
	f.AddUser(&model.User{Id: "u1", Username: "alice"})
	if u, err := f.GetUserByUsername("alice"); err != nil || u.Id != "u1" {
		t.Fatal(u, err)
	}
	if _, err := f.GetUserByUsername("bob"); err == nil {
		t.Fatal("missing user found")
	}
}

func TestFakeDialogsAndThreadOrder(t *testing.T) {
	f := newWorld()
	if err := f.OpenInteractiveDialog(model.OpenDialogRequest{URL: "/x"}); err == nil {
		t.Fatal("dialog without trigger id accepted")
	}
	trigger := f.NewTriggerID("u1")
	if err := f.OpenInteractiveDialog(model.OpenDialogRequest{TriggerId: trigger, URL: "/x", Dialog: model.Dialog{State: "s"}}); err != nil {
		t.Fatal(err)
	}
	if d := f.Dialogs(); len(d) != 1 || d[0].TriggerId != trigger || d[0].Dialog.State != "s" {
		t.Fatal(d)
	}
	root, _ := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Message: "root"})
	reply, _ := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u2", RootId: root.Id, Message: "the reply"})
	list, err := f.GetPostThread(root.Id)
	if err != nil || len(list.Posts) != 2 || list.Posts[reply.Id].Message != "the reply" || list.Order[0] != reply.Id {
		t.Fatal(list, err)
	}
}

func TestFakeUploadFileAttachesAtCreatePost(t *testing.T) {
	f := newWorld()
	if _, err := f.UploadFile([]byte("x"), "", "a.txt"); err == nil {
		t.Fatal("upload without a channel succeeded")
	}
	info, err := f.UploadFile([]byte("hello\n"), "c1", "bash-output.txt")
	if err != nil {
		t.Fatal(err)
	}
	if info.Id == "" || info.Name != "bash-output.txt" || info.Extension != "txt" || info.Size != 6 || info.ChannelId != "c1" {
		t.Fatalf("file info %+v", info)
	}
	if f.Calls("UploadFile") != 2 {
		t.Fatalf("calls %d", f.Calls("UploadFile"))
	}
	p, appErr := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Message: "attached", FileIds: model.StringArray{info.Id}})
	if appErr != nil {
		t.Fatal(appErr)
	}
	files := f.Files()
	if len(files) != 1 || string(files[info.Id].Data) != "hello\n" || files[info.Id].Info.PostId != p.Id {
		t.Fatalf("files %+v", files)
	}
	if len(f.Missing()) != 0 {
		t.Fatalf("missing %v", f.Missing())
	}
}

// GetFileInfo and GetFile answer an uploaded file, and an unknown id as the server does: an
// AppError with status 404.
func TestFakeGetFileInfoAndGetFile(t *testing.T) {
	f := newWorld()
	info, err := f.UploadFile([]byte("\x89PNG\r\n\x1a\n"), "c1", "shot.png")
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.GetFileInfo(info.Id)
	if err != nil || got.Name != "shot.png" || got.Size != 8 || got.Id != info.Id {
		t.Fatalf("GetFileInfo: %+v %v", got, err)
	}
	data, err := f.GetFile(info.Id)
	if err != nil || string(data) != "\x89PNG\r\n\x1a\n" {
		t.Fatalf("GetFile: %q %v", data, err)
	}
	if _, err := f.GetFileInfo("nosuchfile"); err == nil || err.StatusCode != http.StatusNotFound || err.Id != "app.file_info.get.app_error" {
		t.Fatalf("GetFileInfo of an unknown id: %v", err)
	}
	if _, err := f.GetFile("nosuchfile"); err == nil || err.StatusCode != http.StatusNotFound {
		t.Fatalf("GetFile of an unknown id: %v", err)
	}
	if f.Calls("GetFileInfo") != 2 || f.Calls("GetFile") != 2 {
		t.Fatalf("calls %d %d", f.Calls("GetFileInfo"), f.Calls("GetFile"))
	}
}

// ---- what the real server refuses, the fake refuses the same way ----

func wantAppErr(t *testing.T, what string, err *model.AppError, id string, status int) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted, want %s (%d)", what, id, status)
		return
	}
	if err.Id != id || err.StatusCode != status {
		t.Errorf("%s: %s (%d), want %s (%d): %v", what, err.Id, err.StatusCode, id, status, err)
	}
}

func hasServerLog(f *FakeAPI, substr string) bool {
	for _, l := range f.ServerLogs() {
		if strings.Contains(l.Message, substr) {
			return true
		}
	}
	return false
}

func TestFakeRegisterCommandValidatesAutocomplete(t *testing.T) {
	f := NewFakeAPI("")
	// The bug a real server caught: a positional TextInput argument that is not required.
	ac := model.NewAutocompleteData("claude", "[command]", "Claude Code")
	context := model.NewAutocompleteData("context", "thread", "Add a thread as context")
	context.AddNamedTextArgument("", "what to add", "thread", "", false)
	ac.AddCommand(context)
	err := f.RegisterCommand(&model.Command{Trigger: "claude", AutoComplete: true, AutocompleteData: ac})
	if err == nil || err.Error() != "invalid autocomplete data in command: Positional argument can not be optional" {
		t.Fatalf("optional positional argument: %v", err)
	}
	for name, bad := range map[string]func() *model.AutocompleteData{
		"uppercase subcommand": func() *model.AutocompleteData {
			a := model.NewAutocompleteData("claude", "", "")
			a.AddCommand(model.NewAutocompleteData("Start", "", ""))
			return a
		},
		"arguments and subcommands": func() *model.AutocompleteData {
			a := model.NewAutocompleteData("claude", "", "")
			a.AddTextArgument("prompt", "", "")
			a.AddCommand(model.NewAutocompleteData("start", "", ""))
			return a
		},
		"named before positional": func() *model.AutocompleteData {
			a := model.NewAutocompleteData("claude", "", "")
			a.AddNamedTextArgument("mode", "", "", "", false)
			a.AddTextArgument("prompt", "", "")
			return a
		},
		"empty static list item": func() *model.AutocompleteData {
			a := model.NewAutocompleteData("claude", "", "")
			a.AddStaticListArgument("mode", true, []model.AutocompleteListItem{{Item: ""}})
			return a
		},
	} {
		if err := f.RegisterCommand(&model.Command{Trigger: "claude", AutocompleteData: bad()}); err == nil || !strings.HasPrefix(err.Error(), "invalid autocomplete data in command: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := f.RegisterCommand(&model.Command{}); err == nil || err.Error() != "invalid command" {
		t.Errorf("empty trigger: %v", err)
	}
	if n := len(f.Commands()); n != 0 {
		t.Fatalf("refused commands recorded: %d", n)
	}
	// Valid: a required positional argument, an optional NAMED one, a relative dynamic list.
	ok := model.NewAutocompleteData("claude", "[command]", "Claude Code")
	start := model.NewAutocompleteData("start", "[path]", "Start")
	start.AddTextArgument("project path", "[path]", "")
	start.AddNamedTextArgument("model", "model", "", "", false)
	start.AddNamedDynamicListArgument("branch", "branch", "api/v1/branches", false)
	ok.AddCommand(start)
	if err := f.RegisterCommand(&model.Command{Trigger: "Claude", AutoComplete: true, AutocompleteData: ok, URL: "dropped"}); err != nil {
		t.Fatal(err)
	}
	if err := f.RegisterCommand(&model.Command{Trigger: "other", AutoCompleteHint: "h", AutoCompleteDesc: "d"}); err != nil {
		t.Fatal(err)
	}
	cmds := f.Commands()
	if len(cmds) != 2 || cmds[0].Trigger != "claude" || cmds[0].URL != "" || cmds[1].AutocompleteData == nil || cmds[1].AutocompleteData.Trigger != "other" {
		t.Fatalf("stored commands %+v", cmds)
	}
	dyn := cmds[0].AutocompleteData.SubCommands[0].Arguments[2].Data.(*model.AutocompleteDynamicListArg)
	if dyn.FetchURL != "/plugins/claude-code/api/v1/branches" {
		t.Errorf("relative fetch URL not made absolute: %q", dyn.FetchURL)
	}
}

func TestFakeCreatePostValidates(t *testing.T) {
	f := newWorld()
	f.AddChannel(&model.Channel{Id: "c2", TeamId: "t1", Type: model.ChannelTypeOpen, Name: "other"})
	// The limit counts runes, not bytes.
	if _, err := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Message: strings.Repeat("é", MaxPostSize)}); err != nil {
		t.Fatalf("%d runes refused: %v", MaxPostSize, err)
	}
	before := len(f.Posts("c1"))
	_, err := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Message: strings.Repeat("a", MaxPostSize+1)})
	wantAppErr(t, "16384 runes", err, "model.post.is_valid.message_length.app_error", http.StatusBadRequest)
	big := &model.Post{ChannelId: "c1", UserId: "u1", Message: "props"}
	big.AddProp("blob", strings.Repeat("x", model.PostPropsMaxRunes))
	_, err = f.CreatePost(big)
	wantAppErr(t, "oversized props", err, "model.post.is_valid.props.app_error", http.StatusBadRequest)
	_, err = f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Type: "bogus"})
	wantAppErr(t, "unknown type", err, "model.post.is_valid.type.app_error", http.StatusBadRequest)
	_, err = f.CreatePost(&model.Post{Id: model.NewId(), ChannelId: "c1", UserId: "u1"})
	wantAppErr(t, "preset id", err, "app.post.save.existing.app_error", http.StatusBadRequest)
	_, err = f.CreatePost(&model.Post{ChannelId: "nope", UserId: "u1"})
	wantAppErr(t, "unknown channel", err, "app.channel.get.existing.app_error", http.StatusNotFound)
	_, err = f.CreatePost(&model.Post{ChannelId: "c1", Message: "no author"})
	wantAppErr(t, "no author", err, "app.user.missing_account.const", http.StatusNotFound)
	root, _ := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Message: "root"})
	reply, _ := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", RootId: root.Id, Message: "reply"})
	_, err = f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", RootId: reply.Id})
	wantAppErr(t, "reply to a reply", err, "api.post.create_post.root_id.app_error", http.StatusBadRequest)
	_, err = f.CreatePost(&model.Post{ChannelId: "c2", UserId: "u1", RootId: root.Id})
	wantAppErr(t, "root in another channel", err, "api.post.create_post.channel_root_id.app_error", http.StatusInternalServerError)
	if n := len(f.Posts("c1")); n != before+2 {
		t.Fatalf("refused posts stored: %d posts, want %d", n, before+2)
	}
	// What the server does to an accepted post: sanitized props, action ids, from_bot.
	bot, _ := f.EnsureBotUser(&model.Bot{Username: "claude"})
	card := &model.Post{ChannelId: "c1", UserId: bot, Message: "card"}
	card.AddProp(model.PropsAddChannelMember, "x")
	card.AddProp(model.PostPropsAttachments, []*model.SlackAttachment{{Text: "t", Actions: []*model.PostAction{{Name: "Approve"}}}})
	saved, err := f.CreatePost(card)
	if err != nil {
		t.Fatal(err)
	}
	if saved.GetProp(model.PropsAddChannelMember) != nil || saved.GetProp(model.PostPropsFromBot) != "true" || saved.Attachments()[0].Actions[0].Id == "" {
		t.Fatalf("saved post %+v", saved.GetProps())
	}
	// Post.ValidateProps: a server log warning, not a refusal.
	odd := &model.Post{ChannelId: "c1", UserId: "u1", Message: "odd"}
	odd.AddProp(model.PostPropsOverrideIconURL, "not a url")
	if _, err := f.CreatePost(odd); err != nil {
		t.Fatal(err)
	}
	if !hasServerLog(f, "Invalid post props") {
		t.Fatalf("no props warning: %+v", f.ServerLogs())
	}
	// The plugin's own posts carry from_plugin (PluginAPI.CreatePost).
	mine, err := f.ForPlugin().CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Message: "from the plugin"})
	if err != nil || mine.GetProp(model.PostPropsFromPlugin) != "true" {
		t.Fatalf("plugin post %v %v", mine, err)
	}
}

func TestFakeUpdatePostValidates(t *testing.T) {
	f := newWorld()
	p, _ := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Message: "short"})
	u := p.Clone()
	u.Message = strings.Repeat("a", MaxPostSize+1)
	_, err := f.UpdatePost(u)
	wantAppErr(t, "update to 16384 runes", err, "model.post.is_valid.message_length.app_error", http.StatusBadRequest)
	if got, _ := f.GetPost(p.Id); got.Message != "short" || f.UpdateCount(p.Id) != 0 {
		t.Fatalf("refused update applied: %q, %d updates", got.Message, f.UpdateCount(p.Id))
	}
	_, err = f.UpdatePost(&model.Post{Id: "missing"})
	wantAppErr(t, "missing post", err, "app.post.get.app_error", http.StatusNotFound)
	f.mu.Lock()
	sys := &model.Post{Id: model.NewId(), ChannelId: "c1", UserId: "u1", Type: model.PostTypeJoinChannel}
	f.posts[sys.Id] = sys
	f.mu.Unlock()
	_, err = f.UpdatePost(sys.Clone())
	wantAppErr(t, "system message", err, "api.post.update_post.system_message.app_error", http.StatusBadRequest)
	u.Message = "long enough"
	u.AddProp("attachments", []*model.SlackAttachment{{Text: "x"}})
	if got, err := f.UpdatePost(u); err != nil || got.Message != "long enough" || got.EditAt == 0 {
		t.Fatal(got, err)
	}
	f.mu.Lock()
	f.channels["c1"].DeleteAt = 1
	f.mu.Unlock()
	_, err = f.UpdatePost(u)
	wantAppErr(t, "deleted channel", err, "api.post.update_post.can_not_update_post_in_deleted.error", http.StatusBadRequest)
}

func TestFakeKVValidatesKeysAndOptions(t *testing.T) {
	f := NewFakeAPI("")
	ok := strings.Repeat("é", model.KeyValueKeyMaxRunes) // 150 runes, 300 bytes: the limit is runes
	long := strings.Repeat("k", model.KeyValueKeyMaxRunes+1)
	if err := f.KVSet(ok, []byte("v")); err != nil {
		t.Fatalf("150-rune key refused: %v", err)
	}
	const keyErr = "model.plugin_key_value.is_valid.key.app_error"
	for _, key := range []string{long, ""} {
		wantAppErr(t, "KVSet", f.KVSet(key, []byte("v")), keyErr, http.StatusBadRequest)
		wantAppErr(t, "KVSetWithExpiry", f.KVSetWithExpiry(key, []byte("v"), 10), keyErr, http.StatusBadRequest)
		_, err := f.KVSetWithOptions(key, []byte("v"), model.PluginKVSetOptions{Atomic: true})
		wantAppErr(t, "KVSetWithOptions", err, keyErr, http.StatusBadRequest)
		_, err = f.KVCompareAndSet(key, nil, []byte("v"))
		wantAppErr(t, "KVCompareAndSet", err, keyErr, http.StatusBadRequest)
		_, err = f.KVCompareAndDelete(key, []byte("v"))
		wantAppErr(t, "KVCompareAndDelete", err, keyErr, http.StatusBadRequest)
	}
	// Reads and deletes are not validated: a too long key is just not there.
	if v, err := f.KVGet(long); v != nil || err != nil {
		t.Fatalf("KVGet of a long key: %q %v", v, err)
	}
	if err := f.KVDelete(long); err != nil {
		t.Fatal(err)
	}
	// Options are checked before the key.
	_, err := f.KVSetWithOptions(long, []byte("v"), model.PluginKVSetOptions{OldValue: []byte("a")})
	wantAppErr(t, "OldValue without Atomic", err, "model.plugin_kvset_options.is_valid.old_value.app_error", http.StatusBadRequest)
	// What Postgres refuses in a text column.
	wantAppErr(t, "NUL in key", f.KVSet("a\x00b", []byte("v")), "app.plugin_store.save.app_error", http.StatusInternalServerError)
	_, err = f.KVGet("\xff")
	wantAppErr(t, "invalid UTF-8 key read", err, "app.plugin_store.get.app_error", http.StatusInternalServerError)
	// A plugin id the store refuses makes every write fail.
	g := NewFakeAPI("")
	g.SetPluginID("")
	wantAppErr(t, "empty plugin id", g.KVSet("k", []byte("v")), "model.plugin_key_value.is_valid.plugin_id.app_error", http.StatusBadRequest)
	// Store semantics: a negative expiry stores an already expired value; nil old value
	// deletes nothing; a zero per_page lists 10 keys.
	if err := f.KVSetWithExpiry("gone", []byte("v"), -1); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.KVGet("gone"); v != nil {
		t.Fatalf("negative expiry readable: %q", v)
	}
	if deleted, _ := f.KVCompareAndDelete(ok, nil); deleted {
		t.Fatal("CompareAndDelete with nil old value deleted")
	}
	for i := 0; i < 12; i++ {
		f.KVSet(fmt.Sprintf("n%02d", i), []byte{1})
	}
	if keys, err := f.KVList(0, 0); err != nil || len(keys) != 10 {
		t.Fatalf("KVList(0, 0): %d keys %v", len(keys), err)
	}
	if keys, err := f.KVList(-1, 5); err != nil || len(keys) != 5 || keys[0] != "n00" {
		t.Fatalf("KVList(-1, 5): %v %v", keys, err)
	}
}

func TestFakeDialogTriggerIDs(t *testing.T) {
	f := newWorld()
	dlg := model.Dialog{Title: "Deny", CallbackId: "cb", Elements: []model.DialogElement{{DisplayName: "Reason", Name: "reason", Type: "textarea", MaxLength: 100}}}
	wantAppErr(t, "empty trigger id", f.OpenInteractiveDialog(model.OpenDialogRequest{URL: "/x", Dialog: dlg}), "interactive_message.decode_trigger_id.missing_data", http.StatusBadRequest)
	// Verification is on by default, as on the server.
	wantAppErr(t, "made-up trigger id", f.OpenInteractiveDialog(model.OpenDialogRequest{TriggerId: "trigger-x", URL: "/x", Dialog: dlg}), "interactive_message.decode_trigger_id.base64_decode_failed", http.StatusBadRequest)
	other := NewFakeAPI("")
	wantAppErr(t, "another server's trigger id", f.OpenInteractiveDialog(model.OpenDialogRequest{TriggerId: other.NewTriggerID("u1"), URL: "/x", Dialog: dlg}), "interactive_message.decode_trigger_id.verify_signature_failed", http.StatusBadRequest)
	if err := f.OpenInteractiveDialog(model.OpenDialogRequest{TriggerId: f.NewTriggerID("u1"), URL: "/x", Dialog: dlg}); err != nil {
		t.Fatal(err)
	}
	if hasServerLog(f, "Interactive dialog is invalid") {
		t.Fatalf("a valid dialog logged as invalid: %+v", f.ServerLogs())
	}
	// An invalid dialog is sent anyway; the server only logs it.
	if err := f.OpenInteractiveDialog(model.OpenDialogRequest{TriggerId: f.NewTriggerID("u1"), URL: "/x", Dialog: model.Dialog{}}); err != nil {
		t.Fatal(err)
	}
	if !hasServerLog(f, "Interactive dialog is invalid") || len(f.Dialogs()) != 2 {
		t.Fatalf("invalid dialog: logs %+v, %d dialogs", f.ServerLogs(), len(f.Dialogs()))
	}
}

func TestFakeBotsValidate(t *testing.T) {
	f := newWorld()
	_, err := f.CreateBot(&model.Bot{Username: "Not Valid"})
	wantAppErr(t, "invalid username", err, "model.bot.is_valid.username.app_error", http.StatusBadRequest)
	_, err = f.CreateBot(&model.Bot{Username: "long", Description: strings.Repeat("d", model.BotDescriptionMaxRunes+1)})
	wantAppErr(t, "long description", err, "model.bot.is_valid.description.app_error", http.StatusBadRequest)
	if _, err := f.EnsureBotUser(nil); err == nil || err.Error() != "passed a nil bot" {
		t.Errorf("nil bot: %v", err)
	}
	if _, err := f.EnsureBotUser(&model.Bot{}); err == nil || err.Error() != "passed a bot with no username" {
		t.Errorf("no username: %v", err)
	}
	if _, err := f.EnsureBotUser(&model.Bot{Username: "Claude Bot"}); err == nil || !strings.Contains(err.Error(), "failed to create bot") || !strings.Contains(err.Error(), "model.bot.is_valid.username.app_error") {
		t.Errorf("invalid username through EnsureBotUser: %v", err)
	}
	id, ensureErr := f.EnsureBotUser(&model.Bot{Username: "claude", DisplayName: "Claude"})
	if ensureErr != nil {
		t.Fatal(ensureErr)
	}
	if string(f.KVSnapshot()[botUserKey]) != id {
		t.Fatalf("bot id not kept under %s: %v", botUserKey, f.KVSnapshot())
	}
	if b, _ := f.GetBot(id, false); b.OwnerId != DefaultPluginID {
		t.Fatalf("owner %q", b.OwnerId)
	}
	// A new display name is patched onto the same bot.
	if id2, err := f.EnsureBotUser(&model.Bot{Username: "claude", DisplayName: "Claude Code"}); err != nil || id2 != id {
		t.Fatal(id2, err)
	}
	if b, _ := f.GetBot(id, false); b.DisplayName != "Claude Code" {
		t.Fatalf("not patched: %+v", b)
	}
	_, err = f.CreateBot(&model.Bot{Username: "minion", OwnerId: id})
	wantAppErr(t, "bot owned by a bot", err, "plugin_api.bot_cant_create_bot", http.StatusBadRequest)
	// Renaming the bot onto a taken username fails as the server's PatchBot does.
	if _, err := f.EnsureBotUser(&model.Bot{Username: "user-u1"}); err == nil || !strings.Contains(err.Error(), "app.user.save.username_exists.app_error") {
		t.Errorf("rename onto a taken username: %v", err)
	}
	// A human account with the name (no bot id kept yet): its id is returned, the server
	// logs an error.
	g := newWorld()
	if got, err := g.EnsureBotUser(&model.Bot{Username: "user-u1"}); err != nil || got != "u1" || !hasServerLog(g, "Plugin attempted to use an account that already exists") {
		t.Fatalf("human account: %q %v %+v", got, err, g.ServerLogs())
	}
}

func TestFakeAddChannelMember(t *testing.T) {
	f := newWorld()
	f.AddChannel(&model.Channel{Id: "dm", Type: model.ChannelTypeDirect, Name: "u1__u2"})
	f.AddMember("dm", "u1")
	f.AddMember("dm", "u2")
	bot, _ := f.EnsureBotUser(&model.Bot{Username: "claude"})
	_, err := f.AddChannelMember("nope", bot)
	wantAppErr(t, "unknown channel", err, "app.channel.get.existing.app_error", http.StatusNotFound)
	_, err = f.AddChannelMember("c1", "ghost")
	wantAppErr(t, "unknown user", err, "app.user.missing_account.const", http.StatusNotFound)
	// A bot is in no team until added: the server refuses the channel.
	_, err = f.AddChannelMember("c1", bot)
	wantAppErr(t, "bot not in the team", err, "app.team.get_member.missing.app_error", http.StatusNotFound)
	// A DM/GM channel cannot get new members (it has no team).
	_, err = f.AddChannelMember("dm", bot)
	wantAppErr(t, "DM channel", err, "app.team.get_member.missing.app_error", http.StatusNotFound)
	if m, err := f.AddChannelMember("dm", "u1"); err != nil || m.UserId != "u1" {
		t.Fatalf("existing DM member: %v %v", m, err)
	}
	_, err = f.CreateTeamMember("t9", bot)
	wantAppErr(t, "unknown team", err, "app.team.get.find.app_error", http.StatusNotFound)
	if _, err := f.CreateTeamMember("t1", bot); err != nil {
		t.Fatal(err)
	}
	if _, err := f.GetTeamMember("t1", bot); err != nil {
		t.Fatal(err)
	}
	posts := len(f.Posts("c1"))
	m, err := f.AddChannelMember("c1", bot)
	if err != nil || m.UserId != bot || m.ChannelId != "c1" || !m.SchemeUser {
		t.Fatalf("add bot: %+v %v", m, err)
	}
	if !f.HasPermissionToChannel(bot, "c1", model.PermissionCreatePost) {
		t.Fatal("new member cannot post")
	}
	all := f.Posts("c1")
	if len(all) != posts+1 || all[len(all)-1].Type != model.PostTypeJoinChannel || all[len(all)-1].Message != "claude joined the channel." {
		t.Fatalf("join message: %d posts, last %+v", len(all), all[len(all)-1])
	}
	if _, err := f.AddChannelMember("c1", bot); err != nil || len(f.Posts("c1")) != posts+1 {
		t.Fatalf("adding an existing member again: %v, %d posts", err, len(f.Posts("c1")))
	}
	f.AddUser(&model.User{Id: "gone", Username: "gone", DeleteAt: 1})
	_, err = f.AddChannelMember("c1", "gone")
	wantAppErr(t, "deactivated user", err, "app.channel.add_member.deleted_user.app_error", http.StatusForbidden)
}

func TestFakeNonMemberPosts(t *testing.T) {
	f := newWorld()
	bot, _ := f.EnsureBotUser(&model.Bot{Username: "claude"})
	byMember, _ := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Message: "hi"})
	byBot, err := f.CreatePost(&model.Post{ChannelId: "c1", UserId: bot, RootId: byMember.Id, Message: "reply from outside"})
	if err != nil {
		t.Fatal(err) // the server stores it
	}
	got := f.NonMemberPosts()
	if len(got) != 1 || got[0].Id != byBot.Id {
		t.Fatalf("non-member posts %+v", got)
	}
	if !hasServerLog(f, "Missing profile") {
		t.Fatalf("no Missing profile log: %+v", f.ServerLogs())
	}
	f.CreateTeamMember("t1", bot)
	f.AddChannelMember("c1", bot)
	f.CreatePost(&model.Post{ChannelId: "c1", UserId: bot, RootId: byMember.Id, Message: "now a member"})
	if n := len(f.NonMemberPosts()); n != 1 {
		t.Fatalf("%d non-member posts after joining", n)
	}
}

func TestFakeWebSocketNilBroadcast(t *testing.T) {
	f := NewFakeAPI("")
	f.PublishWebSocketEvent("ok", nil, &model.WebsocketBroadcast{UserId: "u1"})
	if len(f.ServerLogs()) != 0 {
		t.Fatal(f.ServerLogs())
	}
	f.PublishWebSocketEvent("bad", nil, nil)
	if !hasServerLog(f, "nil broadcast") {
		t.Fatal("nil broadcast not flagged")
	}
}

// A fault window fails the calls of the methods it names, and only while it is open; the
// plugin sees it through ForPlugin.
func TestFaultWindowFailsNamedMethodsOnlyWhileOpen(t *testing.T) {
	f := newWorld()
	api := f.ForPlugin()
	until := f.FailFor(300*time.Millisecond, "CreatePost", "UpdatePost")
	post := &model.Post{ChannelId: "c1", UserId: "u1", Message: "hi"}
	if p, err := api.CreatePost(post); err == nil || p != nil {
		t.Fatalf("CreatePost in the window: %v %v", p, err)
	} else if err.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d", err.StatusCode)
	}
	if len(f.Posts("c1")) != 0 {
		t.Fatal("a failed create made a post")
	}
	// Other methods answer.
	if _, err := api.GetChannel("c1"); err != nil {
		t.Fatalf("GetChannel: %v", err)
	}
	time.Sleep(time.Until(until) + 10*time.Millisecond)
	p, err := api.CreatePost(post)
	if err != nil {
		t.Fatalf("CreatePost after the window: %v", err)
	}
	p.Message = "edited"
	if _, err := api.UpdatePost(p); err != nil {
		t.Fatalf("UpdatePost after the window: %v", err)
	}
	if n := f.FaultedCalls("CreatePost"); n != 1 {
		t.Fatalf("faulted CreatePost calls: %d", n)
	}
}

// A delay window makes every call wait, also of methods without an error to return; a
// window in the future changes nothing yet; ClearFaults ends them all.
func TestFaultWindowDelaysCalls(t *testing.T) {
	f := newWorld()
	api := f.ForPlugin()
	now := time.Now()
	f.InjectFault("GetUser", Fault{From: now, Until: now.Add(time.Minute), Delay: 150 * time.Millisecond})
	f.InjectFault("LogDebug", Fault{From: now, Until: now.Add(time.Minute), Delay: 150 * time.Millisecond})
	f.InjectFault("GetChannel", Fault{From: now.Add(time.Hour), Until: now.Add(2 * time.Hour), Fail: true})
	start := time.Now()
	if _, err := api.GetUser("u1"); err != nil {
		t.Fatalf("a delayed call fails: %v", err)
	}
	api.LogDebug("slow")
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("two delayed calls took %v", took)
	}
	if _, err := api.GetChannel("c1"); err != nil {
		t.Fatalf("a future window applies now: %v", err)
	}
	f.ClearFaults()
	start = time.Now()
	api.GetUser("u1")
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("a cleared delay still applies: %v", took)
	}
}

// GetPostsSince finds the posts made at or after a time, as the outbox's lookup needs.
func TestGetPostsSince(t *testing.T) {
	f := newWorld()
	old, _ := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Message: "old"})
	since := old.CreateAt + 1
	time.Sleep(2 * time.Millisecond)
	fresh, _ := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "u1", Message: "fresh"})
	list, err := f.GetPostsSince("c1", since)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Order) != 1 || list.Order[0] != fresh.Id {
		t.Fatalf("order %v", list.Order)
	}
}
