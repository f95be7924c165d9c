// Package harness loads a Mattermost plugin with Mattermost's real host code
// (server/public v0.3.0 plugin.Environment, supervisor, go-plugin, yamux) against an
// in-memory fake of plugin.API.
package harness

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// NotImplementedAPI answers every plugin.API method it is asked (generated file). Methods
// with an AppError or error result return "not implemented: X"; the call is recorded.
type NotImplementedAPI struct {
	onMissing func(method string)
}

func (n *NotImplementedAPI) notImplemented(method string) {
	if n.onMissing != nil {
		n.onMissing(method)
	}
}

func (n *NotImplementedAPI) notImplementedAppError(method string) *model.AppError {
	n.notImplemented(method)
	return model.NewAppError(method, "not_implemented", nil, "not implemented: "+method, http.StatusNotImplemented)
}

func (n *NotImplementedAPI) notImplementedError(method string) error {
	n.notImplemented(method)
	return fmt.Errorf("not implemented: %s", method)
}

// LogEntry is one LogDebug/Info/Warn/Error call.
type LogEntry struct {
	Level   string // debug, info, warn, error
	Message string
	KV      []any
}

// WSEvent is one PublishWebSocketEvent call.
type WSEvent struct {
	Event     string
	Payload   map[string]any
	Broadcast *model.WebsocketBroadcast
}

// ClusterEvent is one PublishPluginClusterEvent call.
type ClusterEvent struct {
	Event   model.PluginClusterEvent
	Options model.PluginClusterEventSendOptions
}

type kvEntry struct {
	value    []byte
	expireAt time.Time // zero: never
}

// FakeAPI is an in-memory plugin.API. All methods are safe for concurrent use.
type FakeAPI struct {
	NotImplementedAPI

	mu            sync.Mutex
	now           func() time.Time
	kv            map[string]kvEntry
	posts         map[string]*model.Post
	ephemeral     map[string]*model.Post
	channels      map[string]*model.Channel
	members       map[string]*model.ChannelMember // channelID + "/" + userID
	permissions   map[string]bool                 // userID/channelID/permissionID
	users         map[string]*model.User
	teams         map[string]*model.Team
	history       map[string][]PostSnapshot // post id -> CreatePost then every UpdatePost
	bots          map[string]*model.Bot     // by user id
	commands      []*model.Command
	unregistered  [][2]string
	wsEvents      []WSEvent
	clusterEvents []ClusterEvent
	logs          []LogEntry
	dialogs       []model.OpenDialogRequest
	config        map[string]any
	missing       []string
	calls         map[string]int
	bundlePath    string
	serverVersion string
	lastPostTime  int64
	files         map[string]*UploadedFile // by file id
}

// UploadedFile is a file as UploadFile stored it.
type UploadedFile struct {
	Info *model.FileInfo
	Data []byte
}

var _ plugin.API = (*FakeAPI)(nil)

// NewFakeAPI returns an empty fake. bundlePath is what GetBundlePath answers.
func NewFakeAPI(bundlePath string) *FakeAPI {
	f := &FakeAPI{
		now:           time.Now,
		kv:            map[string]kvEntry{},
		posts:         map[string]*model.Post{},
		ephemeral:     map[string]*model.Post{},
		channels:      map[string]*model.Channel{},
		members:       map[string]*model.ChannelMember{},
		permissions:   map[string]bool{},
		users:         map[string]*model.User{},
		teams:         map[string]*model.Team{},
		history:       map[string][]PostSnapshot{},
		bots:          map[string]*model.Bot{},
		config:        map[string]any{},
		calls:         map[string]int{},
		files:         map[string]*UploadedFile{},
		bundlePath:    bundlePath,
		serverVersion: "10.11.0",
	}
	f.onMissing = func(method string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.missing = append(f.missing, method)
		f.logs = append(f.logs, LogEntry{Level: "error", Message: "fake API: not implemented: " + method})
	}
	return f
}

func (f *FakeAPI) count(method string) { f.calls[method]++ }

// SetClock replaces time.Now (expiry tests).
func (f *FakeAPI) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// Calls returns how often a modelled method was called.
func (f *FakeAPI) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// Missing lists the unmodelled methods the plugin called, in order.
func (f *FakeAPI) Missing() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.missing...)
}

// ---- configuration, bundle, version ----

// SetConfig sets what LoadPluginConfiguration returns (as JSON).
func (f *FakeAPI) SetConfig(cfg map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.config = cfg
}

func (f *FakeAPI) LoadPluginConfiguration(dest any) error {
	f.mu.Lock()
	f.count("LoadPluginConfiguration")
	b, err := json.Marshal(f.config)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dest)
}

func (f *FakeAPI) GetBundlePath() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetBundlePath")
	return f.bundlePath, nil
}

func (f *FakeAPI) GetServerVersion() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetServerVersion")
	return f.serverVersion
}

// ---- logs ----

func (f *FakeAPI) log(level, msg string, kv []any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("Log" + strings.ToUpper(level[:1]) + level[1:])
	f.logs = append(f.logs, LogEntry{Level: level, Message: msg, KV: append([]any(nil), kv...)})
}

func (f *FakeAPI) LogDebug(msg string, kv ...any) { f.log("debug", msg, kv) }
func (f *FakeAPI) LogInfo(msg string, kv ...any)  { f.log("info", msg, kv) }
func (f *FakeAPI) LogWarn(msg string, kv ...any)  { f.log("warn", msg, kv) }
func (f *FakeAPI) LogError(msg string, kv ...any) { f.log("error", msg, kv) }

// Logs returns a copy of the recorded log calls.
func (f *FakeAPI) Logs() []LogEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]LogEntry(nil), f.logs...)
}

// ---- KV store ----

func (f *FakeAPI) getLocked(key string) ([]byte, bool) {
	e, ok := f.kv[key]
	if !ok {
		return nil, false
	}
	if !e.expireAt.IsZero() && !f.now().Before(e.expireAt) {
		delete(f.kv, key)
		return nil, false
	}
	return e.value, true
}

func (f *FakeAPI) setLocked(key string, value []byte, expireSeconds int64) {
	if value == nil {
		delete(f.kv, key)
		return
	}
	e := kvEntry{value: append([]byte{}, value...)}
	if expireSeconds > 0 {
		e.expireAt = f.now().Add(time.Duration(expireSeconds) * time.Second)
	}
	f.kv[key] = e
}

func kvKeyError(where, key string) *model.AppError {
	if key == "" {
		return model.NewAppError(where, "app.plugin_store.save.app_error", nil, "empty key", http.StatusBadRequest)
	}
	if len(key) > model.KeyValueKeyMaxRunes {
		return model.NewAppError(where, "app.plugin_store.save.app_error", nil, "key too long", http.StatusBadRequest)
	}
	return nil
}

func (f *FakeAPI) KVSet(key string, value []byte) *model.AppError {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVSet")
	if err := kvKeyError("KVSet", key); err != nil {
		return err
	}
	f.setLocked(key, value, 0)
	return nil
}

func (f *FakeAPI) KVSetWithExpiry(key string, value []byte, expireInSeconds int64) *model.AppError {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVSetWithExpiry")
	if err := kvKeyError("KVSetWithExpiry", key); err != nil {
		return err
	}
	f.setLocked(key, value, expireInSeconds)
	return nil
}

// KVSetWithOptions follows the server (app/plugin_api.go + store): Atomic compares the
// current value with OldValue (nil OldValue = key must be absent) and sets or, with a nil
// value, deletes; not Atomic is a plain set/delete. OldValue without Atomic is an error.
func (f *FakeAPI) KVSetWithOptions(key string, value []byte, options model.PluginKVSetOptions) (bool, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVSetWithOptions")
	return f.kvSetWithOptionsLocked(key, value, options)
}

func (f *FakeAPI) kvSetWithOptionsLocked(key string, value []byte, options model.PluginKVSetOptions) (bool, *model.AppError) {
	if err := kvKeyError("KVSetWithOptions", key); err != nil {
		return false, err
	}
	if options.OldValue != nil && !options.Atomic {
		return false, model.NewAppError("KVSetWithOptions", "model.plugin_kvset_options.is_valid.old_value.app_error", nil, "OldValue requires Atomic", http.StatusBadRequest)
	}
	if options.Atomic {
		cur, ok := f.getLocked(key)
		if options.OldValue == nil {
			// The store's CompareAndDelete: nil can't be stored, so nothing to delete.
			if ok || value == nil {
				return false, nil
			}
		} else if !ok || string(cur) != string(options.OldValue) {
			return false, nil
		}
	}
	f.setLocked(key, value, options.ExpireInSeconds)
	return true, nil
}

func (f *FakeAPI) KVCompareAndSet(key string, oldValue, newValue []byte) (bool, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVCompareAndSet")
	return f.kvSetWithOptionsLocked(key, newValue, model.PluginKVSetOptions{Atomic: true, OldValue: oldValue})
}

func (f *FakeAPI) KVCompareAndDelete(key string, oldValue []byte) (bool, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVCompareAndDelete")
	cur, ok := f.getLocked(key)
	if !ok || string(cur) != string(oldValue) {
		return false, nil
	}
	delete(f.kv, key)
	return true, nil
}

func (f *FakeAPI) KVGet(key string) ([]byte, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVGet")
	v, ok := f.getLocked(key)
	if !ok {
		return nil, nil
	}
	return append([]byte{}, v...), nil
}

func (f *FakeAPI) KVDelete(key string) *model.AppError {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVDelete")
	delete(f.kv, key)
	return nil
}

func (f *FakeAPI) KVDeleteAll() *model.AppError {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVDeleteAll")
	f.kv = map[string]kvEntry{}
	return nil
}

// KVList pages through the live keys in sorted order (the server orders by PKey).
func (f *FakeAPI) KVList(page, perPage int) ([]string, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVList")
	if page < 0 || perPage < 0 {
		return nil, model.NewAppError("KVList", "app.plugin_store.list.app_error", nil, "negative page or perPage", http.StatusBadRequest)
	}
	keys := make([]string, 0, len(f.kv))
	for k := range f.kv {
		if _, ok := f.getLocked(k); ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	start := page * perPage
	if start >= len(keys) {
		return []string{}, nil
	}
	end := min(start+perPage, len(keys))
	return keys[start:end], nil
}

// KVSnapshot returns the live store content (copies).
func (f *FakeAPI) KVSnapshot() map[string][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]byte{}
	for k := range f.kv {
		if v, ok := f.getLocked(k); ok {
			out[k] = append([]byte{}, v...)
		}
	}
	return out
}

// ---- posts ----

func (f *FakeAPI) timestampLocked() int64 {
	t := model.GetMillisForTime(f.now())
	if t <= f.lastPostTime {
		t = f.lastPostTime + 1
	}
	f.lastPostTime = t
	return t
}

func (f *FakeAPI) CreatePost(post *model.Post) (*model.Post, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("CreatePost")
	if post == nil || post.ChannelId == "" {
		return nil, model.NewAppError("CreatePost", "api.post.create_post.channel_id.app_error", nil, "missing channel id", http.StatusBadRequest)
	}
	if post.RootId != "" {
		root, ok := f.posts[post.RootId]
		if !ok || root.DeleteAt != 0 {
			return nil, model.NewAppError("CreatePost", "api.post.create_post.root_id.app_error", nil, "invalid root id", http.StatusBadRequest)
		}
		if root.RootId != "" {
			return nil, model.NewAppError("CreatePost", "api.post.create_post.root_id.app_error", nil, "root is a reply", http.StatusBadRequest)
		}
	}
	p := post.Clone()
	if p.Id == "" {
		p.Id = model.NewId()
	} else if _, dup := f.posts[p.Id]; dup {
		return nil, model.NewAppError("CreatePost", "app.post.save.existing.app_error", nil, "post exists", http.StatusBadRequest)
	}
	p.CreateAt = f.timestampLocked()
	p.UpdateAt = p.CreateAt
	if p.RootId != "" {
		root := f.posts[p.RootId]
		root.ReplyCount++
		root.LastReplyAt = p.CreateAt
	}
	f.posts[p.Id] = p
	for _, id := range p.FileIds {
		if file, ok := f.files[id]; ok && file.Info.PostId == "" {
			file.Info.PostId = p.Id
		}
	}
	f.recordLocked(p, false)
	return p.Clone(), nil
}

// UploadFile stores data under a new file id (attached to the post that names it in
// FileIds at CreatePost).
func (f *FakeAPI) UploadFile(data []byte, channelID string, filename string) (*model.FileInfo, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("UploadFile")
	if channelID == "" || filename == "" {
		return nil, model.NewAppError("UploadFile", "api.file.upload_file.bad_request.app_error", nil, "missing channel id or filename", http.StatusBadRequest)
	}
	now := f.timestampLocked()
	ext := strings.TrimPrefix(filepath.Ext(filename), ".")
	info := &model.FileInfo{
		Id:        model.NewId(),
		ChannelId: channelID,
		CreateAt:  now,
		UpdateAt:  now,
		Name:      filename,
		Extension: ext,
		Size:      int64(len(data)),
		MimeType:  mime.TypeByExtension("." + ext),
	}
	f.files[info.Id] = &UploadedFile{Info: info, Data: append([]byte(nil), data...)}
	copied := *info
	return &copied, nil
}

// Files returns the uploaded files, by file id (copies).
func (f *FakeAPI) Files() map[string]UploadedFile {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]UploadedFile, len(f.files))
	for id, file := range f.files {
		info := *file.Info
		out[id] = UploadedFile{Info: &info, Data: append([]byte(nil), file.Data...)}
	}
	return out
}

// PostSnapshot is a post as one CreatePost or UpdatePost call left it.
type PostSnapshot struct {
	Update   bool // false: the CreatePost
	Message  string
	Props    model.StringInterface // a JSON round trip of the props (independent copy)
	UpdateAt int64
}

func (f *FakeAPI) recordLocked(p *model.Post, update bool) {
	props := model.StringInterface{}
	if b, err := json.Marshal(p.GetProps()); err == nil {
		_ = json.Unmarshal(b, &props)
	}
	f.history[p.Id] = append(f.history[p.Id], PostSnapshot{Update: update, Message: p.Message, Props: props, UpdateAt: p.UpdateAt})
}

// PostHistory returns what CreatePost and each later UpdatePost stored for a post, in order
// (empty for an unknown id).
func (f *FakeAPI) PostHistory(postID string) []PostSnapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]PostSnapshot(nil), f.history[postID]...)
}

// UpdateCount is how many successful UpdatePost calls a post got.
func (f *FakeAPI) UpdateCount(postID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.history[postID] {
		if s.Update {
			n++
		}
	}
	return n
}

func (f *FakeAPI) UpdatePost(post *model.Post) (*model.Post, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("UpdatePost")
	if post == nil {
		return nil, model.NewAppError("UpdatePost", "api.post.update_post.find.app_error", nil, "nil post", http.StatusBadRequest)
	}
	old, ok := f.posts[post.Id]
	if !ok || old.DeleteAt != 0 {
		return nil, model.NewAppError("UpdatePost", "api.post.update_post.find.app_error", nil, "post not found: "+post.Id, http.StatusNotFound)
	}
	p := old.Clone()
	p.Message = post.Message
	p.Props = post.GetProps()
	p.FileIds = post.FileIds
	p.IsPinned = post.IsPinned
	p.HasReactions = post.HasReactions
	p.UpdateAt = f.timestampLocked()
	if post.Message != old.Message {
		p.EditAt = p.UpdateAt
	}
	f.posts[p.Id] = p
	f.recordLocked(p, true)
	return p.Clone(), nil
}

func (f *FakeAPI) GetPost(postID string) (*model.Post, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetPost")
	p, ok := f.posts[postID]
	if !ok || p.DeleteAt != 0 {
		return nil, model.NewAppError("GetPost", "app.post.get.app_error", nil, "post not found: "+postID, http.StatusNotFound)
	}
	return p.Clone(), nil
}

func (f *FakeAPI) DeletePost(postID string) *model.AppError {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("DeletePost")
	p, ok := f.posts[postID]
	if !ok || p.DeleteAt != 0 {
		return model.NewAppError("DeletePost", "app.post.get.app_error", nil, "post not found: "+postID, http.StatusNotFound)
	}
	now := f.timestampLocked()
	p.DeleteAt = now
	p.UpdateAt = now
	if p.RootId == "" {
		for _, r := range f.posts {
			if r.RootId == postID && r.DeleteAt == 0 {
				r.DeleteAt = now
				r.UpdateAt = now
			}
		}
	}
	return nil
}

func (f *FakeAPI) GetPostThread(postID string) (*model.PostList, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetPostThread")
	p, ok := f.posts[postID]
	if !ok || p.DeleteAt != 0 {
		return nil, model.NewAppError("GetPostThread", "app.post.get.app_error", nil, "post not found: "+postID, http.StatusNotFound)
	}
	root := postID
	if p.RootId != "" {
		root = p.RootId
	}
	var thread []*model.Post
	for _, q := range f.posts {
		if q.DeleteAt == 0 && (q.Id == root || q.RootId == root) {
			thread = append(thread, q)
		}
	}
	// Newest first, as the server orders a thread's PostList.
	sort.Slice(thread, func(i, j int) bool { return thread[i].CreateAt > thread[j].CreateAt })
	list := model.NewPostList()
	for _, q := range thread {
		list.AddPost(q.Clone())
		list.AddOrder(q.Id)
	}
	return list, nil
}

// Posts returns the live (not deleted) posts of a channel, oldest first.
func (f *FakeAPI) Posts(channelID string) []*model.Post {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*model.Post
	for _, p := range f.posts {
		if p.ChannelId == channelID && p.DeleteAt == 0 {
			out = append(out, p.Clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreateAt < out[j].CreateAt })
	return out
}

func (f *FakeAPI) SendEphemeralPost(userID string, post *model.Post) *model.Post {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("SendEphemeralPost")
	p := post.Clone()
	if p.Id == "" {
		p.Id = model.NewId()
	}
	p.Type = model.PostTypeEphemeral
	p.CreateAt = f.timestampLocked()
	p.UpdateAt = p.CreateAt
	p.AddProp("fake_target_user_id", userID)
	f.ephemeral[p.Id] = p
	return p.Clone()
}

func (f *FakeAPI) UpdateEphemeralPost(userID string, post *model.Post) *model.Post {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("UpdateEphemeralPost")
	p := post.Clone()
	p.Type = model.PostTypeEphemeral
	p.UpdateAt = f.timestampLocked()
	if old, ok := f.ephemeral[p.Id]; ok {
		p.CreateAt = old.CreateAt
	}
	p.AddProp("fake_target_user_id", userID)
	f.ephemeral[p.Id] = p
	return p.Clone()
}

func (f *FakeAPI) DeleteEphemeralPost(userID, postID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("DeleteEphemeralPost")
	delete(f.ephemeral, postID)
}

// EphemeralPosts returns the current ephemeral posts (copies), oldest first.
func (f *FakeAPI) EphemeralPosts() []*model.Post {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*model.Post
	for _, p := range f.ephemeral {
		out = append(out, p.Clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreateAt < out[j].CreateAt })
	return out
}

// ---- channels, members, users ----

// AddChannel stores a channel.
func (f *FakeAPI) AddChannel(ch *model.Channel) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.channels[ch.Id] = ch.DeepCopy()
}

// AddMember stores a channel member; permissions are granted per permission id.
func (f *FakeAPI) AddMember(channelID, userID string, permissions ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members[channelID+"/"+userID] = &model.ChannelMember{ChannelId: channelID, UserId: userID, Roles: "channel_user", NotifyProps: model.GetDefaultChannelNotifyProps()}
	for _, p := range permissions {
		f.permissions[userID+"/"+channelID+"/"+p] = true
	}
}

// AddUser stores a user.
func (f *FakeAPI) AddUser(u *model.User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := *u
	f.users[u.Id] = &c
}

func (f *FakeAPI) GetChannel(channelID string) (*model.Channel, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetChannel")
	ch, ok := f.channels[channelID]
	if !ok {
		return nil, model.NewAppError("GetChannel", "app.channel.get.existing.app_error", nil, "channel not found: "+channelID, http.StatusNotFound)
	}
	return ch.DeepCopy(), nil
}

func (f *FakeAPI) GetChannelMember(channelID, userID string) (*model.ChannelMember, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetChannelMember")
	m, ok := f.members[channelID+"/"+userID]
	if !ok {
		return nil, model.NewAppError("GetChannelMember", "app.channel.get_member.missing.app_error", nil, "member not found", http.StatusNotFound)
	}
	c := *m
	return &c, nil
}

// channelUserPermissions are what the channel_user role grants a member (a subset of the
// server's defaults: enough for reading and posting).
var channelUserPermissions = map[string]bool{
	model.PermissionReadChannel.Id:        true,
	model.PermissionReadChannelContent.Id: true,
	model.PermissionCreatePost.Id:         true,
	model.PermissionUseSlashCommands.Id:   true,
	model.PermissionAddReaction.Id:        true,
	model.PermissionRemoveReaction.Id:     true,
	model.PermissionUploadFile.Id:         true,
	model.PermissionEditPost.Id:           true,
}

// HasPermissionToChannel: a permission granted explicitly (AddMember's list, GrantPermission),
// or one of the channel_user role's permissions when the user is a member of the channel.
// Non-members of a channel get nothing they were not explicitly granted.
func (f *FakeAPI) HasPermissionToChannel(userID, channelID string, permission *model.Permission) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("HasPermissionToChannel")
	if permission == nil {
		return false
	}
	if f.permissions[userID+"/"+channelID+"/"+permission.Id] {
		return true
	}
	_, member := f.members[channelID+"/"+userID]
	return member && channelUserPermissions[permission.Id]
}

// GrantPermission grants one channel permission explicitly (member or not).
func (f *FakeAPI) GrantPermission(userID, channelID, permissionID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.permissions[userID+"/"+channelID+"/"+permissionID] = true
}

// RemoveMember removes a channel member and the permissions granted with it.
func (f *FakeAPI) RemoveMember(channelID, userID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.members, channelID+"/"+userID)
	prefix := userID + "/" + channelID + "/"
	for k := range f.permissions {
		if strings.HasPrefix(k, prefix) {
			delete(f.permissions, k)
		}
	}
}

// AddTeam stores a team.
func (f *FakeAPI) AddTeam(team *model.Team) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := *team
	f.teams[team.Id] = &c
}

func (f *FakeAPI) GetTeam(teamID string) (*model.Team, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetTeam")
	t, ok := f.teams[teamID]
	if !ok {
		return nil, model.NewAppError("GetTeam", "app.team.get.find.app_error", nil, "team not found: "+teamID, http.StatusNotFound)
	}
	c := *t
	return &c, nil
}

func (f *FakeAPI) GetTeamByName(name string) (*model.Team, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetTeamByName")
	for _, t := range f.teams {
		if t.Name == name {
			c := *t
			return &c, nil
		}
	}
	return nil, model.NewAppError("GetTeamByName", "app.team.get_by_name.missing.app_error", nil, "team not found: "+name, http.StatusNotFound)
}

func (f *FakeAPI) GetUserByUsername(name string) (*model.User, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetUserByUsername")
	for _, u := range f.users {
		if u.Username == name {
			c := *u
			return &c, nil
		}
	}
	return nil, model.NewAppError("GetUserByUsername", "app.user.get_by_username.app_error", nil, "user not found: "+name, http.StatusNotFound)
}

func (f *FakeAPI) GetUser(userID string) (*model.User, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetUser")
	u, ok := f.users[userID]
	if !ok {
		return nil, model.NewAppError("GetUser", "app.user.missing_account.const", nil, "user not found: "+userID, http.StatusNotFound)
	}
	c := *u
	return &c, nil
}

// ---- bots ----

func (f *FakeAPI) createBotLocked(bot *model.Bot) (*model.Bot, *model.AppError) {
	if bot == nil || bot.Username == "" {
		return nil, model.NewAppError("CreateBot", "model.bot.is_valid.username.app_error", nil, "missing username", http.StatusBadRequest)
	}
	for _, u := range f.users {
		if u.Username == bot.Username {
			return nil, model.NewAppError("CreateBot", "app.user.save.username_exists.app_error", nil, "username exists", http.StatusBadRequest)
		}
	}
	b := *bot
	b.UserId = model.NewId()
	b.CreateAt = model.GetMillisForTime(f.now())
	b.UpdateAt = b.CreateAt
	f.bots[b.UserId] = &b
	f.users[b.UserId] = &model.User{Id: b.UserId, Username: b.Username, FirstName: b.DisplayName, IsBot: true, Roles: "system_user"}
	c := b
	return &c, nil
}

func (f *FakeAPI) CreateBot(bot *model.Bot) (*model.Bot, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("CreateBot")
	return f.createBotLocked(bot)
}

func (f *FakeAPI) GetBot(botUserID string, includeDeleted bool) (*model.Bot, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetBot")
	b, ok := f.bots[botUserID]
	if !ok || (b.DeleteAt != 0 && !includeDeleted) {
		return nil, model.NewAppError("GetBot", "store.sql_bot.get.missing.app_error", nil, "bot not found", http.StatusNotFound)
	}
	c := *b
	return &c, nil
}

// EnsureBotUser returns the existing bot with that username or creates it.
func (f *FakeAPI) EnsureBotUser(bot *model.Bot) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("EnsureBotUser")
	if bot == nil {
		return "", fmt.Errorf("EnsureBotUser: nil bot")
	}
	for _, b := range f.bots {
		if b.Username == bot.Username {
			return b.UserId, nil
		}
	}
	b, err := f.createBotLocked(bot)
	if err != nil {
		return "", err
	}
	return b.UserId, nil
}

// Bots returns the bots (copies).
func (f *FakeAPI) Bots() []model.Bot {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Bot
	for _, b := range f.bots {
		out = append(out, *b)
	}
	return out
}

// ---- commands, events, dialogs ----

func (f *FakeAPI) RegisterCommand(command *model.Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("RegisterCommand")
	if command == nil || command.Trigger == "" {
		return fmt.Errorf("RegisterCommand: missing trigger")
	}
	c := *command
	f.commands = append(f.commands, &c)
	return nil
}

func (f *FakeAPI) UnregisterCommand(teamID, trigger string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("UnregisterCommand")
	f.unregistered = append(f.unregistered, [2]string{teamID, trigger})
	return nil
}

// Commands returns the recorded RegisterCommand arguments.
func (f *FakeAPI) Commands() []*model.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*model.Command(nil), f.commands...)
}

func (f *FakeAPI) PublishWebSocketEvent(event string, payload map[string]any, broadcast *model.WebsocketBroadcast) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("PublishWebSocketEvent")
	f.wsEvents = append(f.wsEvents, WSEvent{Event: event, Payload: payload, Broadcast: broadcast})
}

// WebSocketEvents returns the recorded PublishWebSocketEvent calls.
func (f *FakeAPI) WebSocketEvents() []WSEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]WSEvent(nil), f.wsEvents...)
}

func (f *FakeAPI) PublishPluginClusterEvent(ev model.PluginClusterEvent, opts model.PluginClusterEventSendOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("PublishPluginClusterEvent")
	f.clusterEvents = append(f.clusterEvents, ClusterEvent{Event: ev, Options: opts})
	return nil
}

// ClusterEvents returns the recorded PublishPluginClusterEvent calls.
func (f *FakeAPI) ClusterEvents() []ClusterEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ClusterEvent(nil), f.clusterEvents...)
}

func (f *FakeAPI) OpenInteractiveDialog(dialog model.OpenDialogRequest) *model.AppError {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("OpenInteractiveDialog")
	if dialog.TriggerId == "" {
		return model.NewAppError("OpenInteractiveDialog", "api.dialog.open.trigger_id", nil, "missing trigger id", http.StatusBadRequest)
	}
	f.dialogs = append(f.dialogs, dialog)
	return nil
}

// Dialogs returns the recorded OpenInteractiveDialog calls.
func (f *FakeAPI) Dialogs() []model.OpenDialogRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]model.OpenDialogRequest(nil), f.dialogs...)
}
