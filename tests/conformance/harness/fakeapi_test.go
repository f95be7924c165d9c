package harness

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

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
	f := NewFakeAPI("")
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
	if err := f.OpenInteractiveDialog(model.OpenDialogRequest{TriggerId: "t"}); err != nil {
		t.Fatal(err)
	}
	if len(f.Commands()) != 1 || len(f.WebSocketEvents()) != 1 || len(f.ClusterEvents()) != 1 || len(f.Dialogs()) != 1 {
		t.Fatal("recording")
	}
}

func TestFakePostHistory(t *testing.T) {
	f := NewFakeAPI("")
	p, _ := f.CreatePost(&model.Post{ChannelId: "c1", UserId: "bot", Message: "a"})
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
	f := NewFakeAPI("")
	if err := f.OpenInteractiveDialog(model.OpenDialogRequest{URL: "/x"}); err == nil {
		t.Fatal("dialog without trigger id accepted")
	}
	if err := f.OpenInteractiveDialog(model.OpenDialogRequest{TriggerId: "t", URL: "/x", Dialog: model.Dialog{State: "s"}}); err != nil {
		t.Fatal(err)
	}
	if d := f.Dialogs(); len(d) != 1 || d[0].TriggerId != "t" || d[0].Dialog.State != "s" {
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
	f := NewFakeAPI("/bundle")
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
	p, appErr := f.CreatePost(&model.Post{ChannelId: "c1", Message: "attached", FileIds: model.StringArray{info.Id}})
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
