// Package harness loads a Mattermost plugin with Mattermost's real host code
// (server/public v0.3.0 plugin.Environment, supervisor, go-plugin, yamux) against an
// in-memory fake of plugin.API.
package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
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

	pluginID       string
	teamMembers    map[string]*model.TeamMember // teamID + "/" + userID
	nonMemberPosts []string                     // ids of posts whose author was not a channel member
	serverLogs     []LogEntry                   // what the real server would log itself
	triggerKey     *ecdsa.PrivateKey            // signs NewTriggerID, verifies in OpenInteractiveDialog
	verifyTriggers bool
	faults         map[string][]Fault // by method: windows that delay or fail its calls
	faulted        map[string]int     // calls a fault window failed, by method
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
		verifyTriggers: true,
		now:            time.Now,
		kv:             map[string]kvEntry{},
		posts:          map[string]*model.Post{},
		ephemeral:      map[string]*model.Post{},
		channels:       map[string]*model.Channel{},
		members:        map[string]*model.ChannelMember{},
		permissions:    map[string]bool{},
		users:          map[string]*model.User{},
		teams:          map[string]*model.Team{},
		history:        map[string][]PostSnapshot{},
		bots:           map[string]*model.Bot{},
		config:         map[string]any{},
		calls:          map[string]int{},
		files:          map[string]*UploadedFile{},
		bundlePath:     bundlePath,
		serverVersion:  "10.11.0",
		pluginID:       DefaultPluginID,
		teamMembers:    map[string]*model.TeamMember{},
		faults:         map[string][]Fault{},
		faulted:        map[string]int{},
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

// SetPluginID sets the id of the plugin the fake serves (KV namespace validity, the bot's
// owner, plugin command URLs). NewHost sets the manifest's id.
func (f *FakeAPI) SetPluginID(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pluginID = id
}

// serverLogLocked records a line the real server would write to its own log (not a plugin
// log call): validator warnings, notification errors.
func (f *FakeAPI) serverLogLocked(level, msg string, kv ...any) {
	f.serverLogs = append(f.serverLogs, LogEntry{Level: level, Message: msg, KV: kv})
}

func (f *FakeAPI) serverLoggerLocked() serverLogger {
	return serverLogger{add: func(level, msg string, kv []any) { f.serverLogLocked(level, msg, kv...) }}
}

// ServerLogs returns what the real server would have logged itself while serving the
// plugin's calls: "Invalid post props..." (Post.ValidateProps), "Interactive dialog is
// invalid" (app.OpenInteractiveDialog), "Missing profile" for a post by a non-member, a nil
// websocket broadcast, EnsureBot's "Plugin attempted to use an account that already exists".
func (f *FakeAPI) ServerLogs() []LogEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]LogEntry(nil), f.serverLogs...)
}

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

// GetPluginStatus mirrors Channels.GetPluginStatus for the one plugin the fake serves: its
// status, with ClusterId empty as on a server that is not clustered (ClusterId is only set
// when the server runs a cluster; the simulated cluster's nodes answer their own id); any
// other id: app.plugin.not_installed.app_error, 404.
func (f *FakeAPI) GetPluginStatus(id string) (*model.PluginStatus, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetPluginStatus")
	if id == "" || id != f.pluginID {
		return nil, model.NewAppError("GetPluginStatus", "app.plugin.not_installed.app_error", nil, "", http.StatusNotFound)
	}
	return &model.PluginStatus{PluginId: id, PluginPath: f.bundlePath, State: model.PluginStateRunning, ClusterId: ""}, nil
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
	// model.NewPluginKeyValueFromOptions: any non-zero ExpireInSeconds sets ExpireAt, so a
	// negative one stores an already expired value (never read back).
	if expireSeconds != 0 {
		e.expireAt = f.now().Add(time.Duration(expireSeconds) * time.Second)
	}
	f.kv[key] = e
}

func (f *FakeAPI) KVSet(key string, value []byte) *model.AppError {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVSet")
	// app.SetPluginKey -> SetPluginKeyWithExpiry(0) -> SetPluginKeyWithOptions.
	_, err := f.kvSetWithOptionsLocked(key, value, model.PluginKVSetOptions{})
	return err
}

func (f *FakeAPI) KVSetWithExpiry(key string, value []byte, expireInSeconds int64) *model.AppError {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVSetWithExpiry")
	// app.SetPluginKeyWithExpiry -> SetPluginKeyWithOptions.
	_, err := f.kvSetWithOptionsLocked(key, value, model.PluginKVSetOptions{ExpireInSeconds: expireInSeconds})
	return err
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

// kvSetWithOptionsLocked mirrors PlatformService.SetPluginKeyWithOptions (options.IsValid)
// and SqlPluginStore.SetWithOptions -> SaveOrUpdate / CompareAndSet (PluginKeyValue.IsValid,
// then the write); refusals carry the validators' own AppErrors
// (model.plugin_kvset_options.is_valid.old_value.app_error,
// model.plugin_key_value.is_valid.key.app_error, 400).
func (f *FakeAPI) kvSetWithOptionsLocked(key string, value []byte, options model.PluginKVSetOptions) (bool, *model.AppError) {
	if err := options.IsValid(); err != nil {
		return false, err
	}
	if err := kvKeyCheck(f.pluginID, key, "SetPluginKeyWithOptions", "app.plugin_store.save.app_error"); err != nil {
		return false, err
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
	// app.CompareAndSetPluginKey -> SetPluginKeyWithOptions(Atomic, OldValue).
	return f.kvSetWithOptionsLocked(key, newValue, model.PluginKVSetOptions{Atomic: true, OldValue: oldValue})
}

// KVCompareAndDelete mirrors SqlPluginStore.CompareAndDelete: PluginKeyValue.IsValid, a nil
// old value deletes nothing (false), else delete where the live value equals it.
func (f *FakeAPI) KVCompareAndDelete(key string, oldValue []byte) (bool, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVCompareAndDelete")
	if err := kvKeyCheck(f.pluginID, key, "CompareAndDeletePluginKey", "app.plugin_store.delete.app_error"); err != nil {
		return false, err
	}
	if oldValue == nil {
		return false, nil
	}
	cur, ok := f.getLocked(key)
	if !ok || string(cur) != string(oldValue) {
		return false, nil
	}
	delete(f.kv, key)
	return true, nil
}

// KVGet: the server's lookup does no key validation (an empty or too long key just is not
// found); only Postgres refuses a key a text column cannot hold (app.plugin_store.get.app_error).
func (f *FakeAPI) KVGet(key string) ([]byte, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVGet")
	if err := kvKeyPostgresCheck(key, "GetPluginKey", "app.plugin_store.get.app_error"); err != nil {
		return nil, err
	}
	v, ok := f.getLocked(key)
	if !ok {
		return nil, nil
	}
	return append([]byte{}, v...), nil
}

// KVDelete: PlatformService.DeletePluginKey does no key validation; Postgres refuses a key
// a text column cannot hold (app.plugin_store.delete.app_error).
func (f *FakeAPI) KVDelete(key string) *model.AppError {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVDelete")
	if err := kvKeyPostgresCheck(key, "DeletePluginKey", "app.plugin_store.delete.app_error"); err != nil {
		return err
	}
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

// KVList pages through the live keys in sorted order as SqlPluginStore.List does (ORDER BY
// PKey, OFFSET page*perPage, LIMIT perPage): no error for odd arguments, a limit <= 0 is
// the store's default of 10, an offset <= 0 is 0.
func (f *FakeAPI) KVList(page, perPage int) ([]string, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("KVList")
	offset, limit := page*perPage, perPage
	if limit <= 0 {
		limit = 10 // sqlstore defaultPluginKeyFetchLimit
	}
	if offset <= 0 {
		offset = 0
	}
	keys := make([]string, 0, len(f.kv))
	for k := range f.kv {
		if _, ok := f.getLocked(k); ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if offset >= len(keys) {
		return []string{}, nil
	}
	end := min(offset+limit, len(keys))
	return keys[offset:end], nil
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

// CreatePost stores a post after the checks app.CreatePostMissingChannel / app.CreatePost /
// SqlPostStore.Save make, in their order, with their error ids:
//   - the channel exists (app.channel.get.existing.app_error, 404);
//   - Post.SanitizeProps drops add_channel_member and force_notification;
//   - the author exists (app.user.missing_account.const, 404); a bot author gets
//     from_bot = "true";
//   - a reply's root exists and is live (api.post.create_post.root_id.app_error, 400), is in
//     the same channel (api.post.create_post.channel_root_id.app_error, 500) and is not
//     itself a reply (api.post.create_post.root_id.app_error, 400);
//   - the caller set no Id (store ErrInvalidInput -> app.post.save.existing.app_error, 400);
//   - Post.PreCommit (props non-nil, action ids generated, file ids deduplicated), then
//     Post.IsValid(MaxPostSize) (message <= 16383 runes, props <= PostPropsMaxRunes, type,
//     hashtags, file ids; model.post.is_valid.*.app_error, 400), then Post.ValidateProps
//     (a server log warning, not a refusal).
//
// A post by a user who is not a member of the channel is stored (the server stores it) and
// listed by NonMemberPosts: the real server then logs "Missing profile" for the thread's
// notifications (app.SendNotifications looks the author up among the channel's profiles).
// What the plugin posts through NewHost's API also gets from_plugin = "true" (PluginAPI.CreatePost).
func (f *FakeAPI) CreatePost(post *model.Post) (*model.Post, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("CreatePost")
	if post == nil { // the server would dereference it
		return nil, model.NewAppError("CreatePost", "api.context.invalid_body_param.app_error", nil, "nil post", http.StatusBadRequest)
	}
	if _, ok := f.channels[post.ChannelId]; !ok {
		return nil, model.NewAppError("CreatePostMissingChannel", "app.channel.get.existing.app_error", map[string]any{"channel_id": post.ChannelId}, "channel not found: "+post.ChannelId, http.StatusNotFound)
	}
	p := post.Clone()
	p.SanitizeProps()
	user, ok := f.users[p.UserId]
	if !ok {
		return nil, model.NewAppError("CreatePost", "app.user.missing_account.const", nil, "user not found: "+p.UserId, http.StatusNotFound)
	}
	if user.IsBot {
		p.AddProp(model.PostPropsFromBot, "true")
	}
	if p.RootId != "" {
		root, ok := f.posts[p.RootId]
		if !ok || root.DeleteAt != 0 {
			return nil, model.NewAppError("createPost", "api.post.create_post.root_id.app_error", nil, "invalid root id", http.StatusBadRequest)
		}
		if root.ChannelId != p.ChannelId {
			return nil, model.NewAppError("createPost", "api.post.create_post.channel_root_id.app_error", nil, "root in another channel", http.StatusInternalServerError)
		}
		if root.RootId != "" {
			return nil, model.NewAppError("createPost", "api.post.create_post.root_id.app_error", nil, "root is a reply", http.StatusBadRequest)
		}
	}
	p.Hashtags, _ = model.ParseHashtags(p.Message)
	if p.Id != "" {
		return nil, model.NewAppError("CreatePost", "app.post.save.existing.app_error", nil, "a new post must not have an id: "+p.Id, http.StatusBadRequest)
	}
	p.Id = model.NewId()
	p.CreateAt = f.timestampLocked()
	p.UpdateAt = p.CreateAt
	p.OriginalId = ""
	p.PreCommit()
	if err := postIsValid(p); err != nil {
		return nil, err
	}
	p.ValidateProps(f.serverLoggerLocked())
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
	if _, member := f.members[p.ChannelId+"/"+p.UserId]; !member {
		f.nonMemberPosts = append(f.nonMemberPosts, p.Id)
		f.serverLogLocked("error", "Missing profile", "post_id", p.Id, "sender_id", p.UserId, "channel_id", p.ChannelId,
			"note", "the author is not a member of the channel; the server's notifications for this post cannot find its profile")
	}
	f.recordLocked(p, false)
	return p.Clone(), nil
}

// NonMemberPosts returns the posts (as stored, copies, oldest first) whose author was not a
// member of the channel when they were created.
func (f *FakeAPI) NonMemberPosts() []*model.Post {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*model.Post, 0, len(f.nonMemberPosts))
	for _, id := range f.nonMemberPosts {
		if p, ok := f.posts[id]; ok {
			out = append(out, p.Clone())
		}
	}
	return out
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

// GetFileInfo answers a file's metadata as the server does: an unknown id is the store's
// not-found, an AppError with status 404 (app.Server.getFileInfo).
func (f *FakeAPI) GetFileInfo(fileID string) (*model.FileInfo, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetFileInfo")
	file, ok := f.files[fileID]
	if !ok {
		return nil, fileNotFound()
	}
	info := *file.Info
	return &info, nil
}

// GetFile answers a file's bytes; the server looks its info up first (app.App.GetFile), so an
// unknown id fails the same way.
func (f *FakeAPI) GetFile(fileID string) ([]byte, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetFile")
	file, ok := f.files[fileID]
	if !ok {
		return nil, fileNotFound()
	}
	return append([]byte(nil), file.Data...), nil
}

func fileNotFound() *model.AppError {
	return model.NewAppError("GetFileInfo", "app.file_info.get.app_error", nil, "", http.StatusNotFound)
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

// UpdatePost mirrors app.UpdatePost (SafeUpdate false, as PluginAPI.UpdatePost calls it) and
// SqlPostStore.Update: SanitizeProps; the post exists and is live (store Get ->
// app.post.get.app_error, 404); not a system message
// (api.post.update_post.system_message.app_error, 400); its channel exists and is not
// deleted (api.post.update_post.can_not_update_post_in_deleted.error, 400); Message, Props,
// FileIds, IsPinned, HasReactions replaced; EditAt set when the message, the file ids or the
// attachments changed; PreCommit, Post.IsValid(MaxPostSize), Post.ValidateProps.
func (f *FakeAPI) UpdatePost(post *model.Post) (*model.Post, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("UpdatePost")
	if post == nil { // the server would dereference it
		return nil, model.NewAppError("UpdatePost", "api.context.invalid_body_param.app_error", nil, "nil post", http.StatusBadRequest)
	}
	received := post.Clone()
	received.SanitizeProps()
	old, ok := f.posts[received.Id]
	if !ok || old.DeleteAt != 0 {
		return nil, model.NewAppError("UpdatePost", "app.post.get.app_error", nil, "post not found: "+received.Id, http.StatusNotFound)
	}
	if old.IsSystemMessage() {
		return nil, model.NewAppError("UpdatePost", "api.post.update_post.system_message.app_error", nil, "id="+received.Id, http.StatusBadRequest)
	}
	ch, ok := f.channels[old.ChannelId]
	if !ok {
		return nil, model.NewAppError("GetChannel", "app.channel.get.existing.app_error", map[string]any{"channel_id": old.ChannelId}, "", http.StatusNotFound)
	}
	if ch.DeleteAt != 0 {
		return nil, model.NewAppError("UpdatePost", "api.post.update_post.can_not_update_post_in_deleted.error", nil, "", http.StatusBadRequest)
	}
	now := f.timestampLocked()
	p := old.Clone()
	if p.Message != received.Message {
		p.Message = received.Message
		p.EditAt = now
		p.Hashtags, _ = model.ParseHashtags(received.Message)
	}
	p.IsPinned = received.IsPinned
	p.HasReactions = received.HasReactions
	p.SetProps(received.GetProps())
	p.FileIds = received.FileIds
	if p.EditAt == old.EditAt && (!old.FileIds.Equals(p.FileIds) || !old.AttachmentsEqual(p)) {
		p.EditAt = now
	}
	p.UpdateAt = now
	p.PreCommit()
	if err := postIsValid(p); err != nil {
		return nil, err
	}
	p.ValidateProps(f.serverLoggerLocked())
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
	return asStored(p), nil
}

// asStored is a post as the server reads it back from the database: its props went through
// JSON, so attachments come back as []interface{} of map[string]interface{}, not as the
// []*model.SlackAttachment the plugin sent (a plugin that only understands the latter cannot
// read its own cards after a restart).
func asStored(p *model.Post) *model.Post {
	b, err := json.Marshal(p)
	if err != nil {
		return p.Clone()
	}
	var out model.Post
	if json.Unmarshal(b, &out) != nil {
		return p.Clone()
	}
	return &out
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
		list.AddPost(asStored(q))
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
	// app.SendEphemeralPost validates nothing (no size or props limit); it fills in action ids.
	p.GenerateActionIds()
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
	// app.UpdateEphemeralPost validates nothing either; it fills in action ids.
	p.GenerateActionIds()
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
	// A member of a team's channel is a member of the team (the server keeps this invariant).
	if ch, ok := f.channels[channelID]; ok && ch.TeamId != "" {
		f.addTeamMemberLocked(ch.TeamId, userID)
	}
	for _, p := range permissions {
		f.permissions[userID+"/"+channelID+"/"+p] = true
	}
}

// AddTeamMember makes a user a member of a team (test setup).
func (f *FakeAPI) AddTeamMember(teamID, userID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addTeamMemberLocked(teamID, userID)
}

func (f *FakeAPI) addTeamMemberLocked(teamID, userID string) *model.TeamMember {
	key := teamID + "/" + userID
	if m, ok := f.teamMembers[key]; ok && m.DeleteAt == 0 {
		return m
	}
	m := &model.TeamMember{TeamId: teamID, UserId: userID, Roles: "team_user", SchemeUser: true, CreateAt: model.GetMillisForTime(f.now())}
	f.teamMembers[key] = m
	return m
}

// CreateTeamMember mirrors app.AddTeamMember -> AddUserToTeam: the team exists
// (app.team.get.find.app_error, 404), the user exists (app.user.missing_account.const, 404);
// an existing member is returned as is. Not modelled: the team's default channels and the
// "joined the team" system post.
func (f *FakeAPI) CreateTeamMember(teamID, userID string) (*model.TeamMember, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("CreateTeamMember")
	if _, ok := f.teams[teamID]; !ok {
		return nil, model.NewAppError("AddUserToTeam", "app.team.get.find.app_error", nil, "team not found: "+teamID, http.StatusNotFound)
	}
	if _, ok := f.users[userID]; !ok {
		return nil, model.NewAppError("AddUserToTeam", "app.user.missing_account.const", nil, "user not found: "+userID, http.StatusNotFound)
	}
	c := *f.addTeamMemberLocked(teamID, userID)
	return &c, nil
}

// GetTeamMember: app.GetTeamMember (app.team.get_member.missing.app_error, 404).
func (f *FakeAPI) GetTeamMember(teamID, userID string) (*model.TeamMember, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetTeamMember")
	m, ok := f.teamMembers[teamID+"/"+userID]
	if !ok {
		return nil, model.NewAppError("GetTeamMember", "app.team.get_member.missing.app_error", nil, "team member not found", http.StatusNotFound)
	}
	c := *m
	return &c, nil
}

// AddChannelMember mirrors PluginAPI.AddChannelMember -> app.AddChannelMember ->
// AddUserToChannel -> addUserToChannel (no requestor), in the server's order:
//   - the channel exists (app.channel.get.existing.app_error, 404);
//   - an existing member is returned as is;
//   - the user exists (app.user.missing_account.const, 404) and is not deactivated
//     (app.channel.add_member.deleted_user.app_error, 403);
//   - the user is a member of the channel's team (app.team.get_member.missing.app_error,
//     404; a removed one: api.channel.add_user.to.channel.failed.deleted.app_error, 400).
//     A DM or group channel has no team, so this is where adding anyone to it fails;
//     a bot is in no team until CreateTeamMember;
//   - only open and private channels take members (api.channel.add_user_to_channel.type.app_error, 400);
//   - the member gets channel_user; the server posts "<username> joined the channel."
//     (type system_join_channel, by the user), which the fake stores too.
func (f *FakeAPI) AddChannelMember(channelID, userID string) (*model.ChannelMember, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("AddChannelMember")
	ch, ok := f.channels[channelID]
	if !ok {
		return nil, model.NewAppError("GetChannel", "app.channel.get.existing.app_error", map[string]any{"channel_id": channelID}, "channel not found: "+channelID, http.StatusNotFound)
	}
	if m, ok := f.members[channelID+"/"+userID]; ok {
		c := *m
		return &c, nil
	}
	user, ok := f.users[userID]
	if !ok {
		return nil, model.NewAppError("GetUser", "app.user.missing_account.const", nil, "user not found: "+userID, http.StatusNotFound)
	}
	if user.DeleteAt > 0 {
		return nil, model.NewAppError("AddChannelMember", "app.channel.add_member.deleted_user.app_error", nil, "", http.StatusForbidden)
	}
	tm, ok := f.teamMembers[ch.TeamId+"/"+userID]
	if !ok {
		return nil, model.NewAppError("AddUserToChannel", "app.team.get_member.missing.app_error", nil, "not a member of team "+ch.TeamId, http.StatusNotFound)
	}
	if tm.DeleteAt > 0 {
		return nil, model.NewAppError("AddUserToChannel", "api.channel.add_user.to.channel.failed.deleted.app_error", nil, "", http.StatusBadRequest)
	}
	if ch.Type != model.ChannelTypeOpen && ch.Type != model.ChannelTypePrivate {
		return nil, model.NewAppError("AddUserToChannel", "api.channel.add_user_to_channel.type.app_error", nil, "", http.StatusBadRequest)
	}
	m := &model.ChannelMember{ChannelId: channelID, UserId: userID, Roles: "channel_user", NotifyProps: model.GetDefaultChannelNotifyProps(), SchemeGuest: user.IsGuest(), SchemeUser: !user.IsGuest()}
	f.members[channelID+"/"+userID] = m
	// app.postJoinChannelMessage
	join := &model.Post{Id: model.NewId(), ChannelId: channelID, UserId: userID, Type: model.PostTypeJoinChannel,
		Message: fmt.Sprintf("%v joined the channel.", user.Username), Props: model.StringInterface{"username": user.Username}}
	if user.IsGuest() {
		join.Type = model.PostTypeGuestJoinChannel
	}
	if user.IsBot {
		join.AddProp(model.PostPropsFromBot, "true")
	}
	join.CreateAt = f.timestampLocked()
	join.UpdateAt = join.CreateAt
	join.PreCommit()
	f.posts[join.Id] = join
	f.recordLocked(join, false)
	c := *m
	return &c, nil
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

// HasPermissionTo: a system-wide permission; system admins (a user whose Roles hold
// system_admin) have them all, as the server's role scheme gives them.
func (f *FakeAPI) HasPermissionTo(userID string, permission *model.Permission) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("HasPermissionTo")
	u, ok := f.users[userID]
	return ok && permission != nil && u.IsSystemAdmin()
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

// createBotLocked mirrors app.CreateBot: Bot.IsValidCreate (username, display name and
// description lengths, owner; model.bot.is_valid.*.app_error, 400), then the user save
// (a taken username: app.user.save.username_exists.app_error, 400).
func (f *FakeAPI) createBotLocked(bot *model.Bot) (*model.Bot, *model.AppError) {
	if err := bot.IsValidCreate(); err != nil {
		return nil, err
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
	b.DeleteAt = 0
	f.bots[b.UserId] = &b
	f.users[b.UserId] = &model.User{Id: b.UserId, Username: b.Username, FirstName: b.DisplayName, IsBot: true, Roles: "system_user"}
	c := b
	return &c, nil
}

// CreateBot mirrors PluginAPI.CreateBot: an empty OwnerId becomes the plugin id; a bot
// cannot own a bot (plugin_api.bot_cant_create_bot, 400); then app.CreateBot.
func (f *FakeAPI) CreateBot(bot *model.Bot) (*model.Bot, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("CreateBot")
	if bot == nil { // the server would dereference it
		return nil, model.NewAppError("CreateBot", "api.context.invalid_body_param.app_error", nil, "nil bot", http.StatusBadRequest)
	}
	b := *bot
	if b.OwnerId == "" {
		b.OwnerId = f.pluginID
	}
	if owner, ok := f.users[b.OwnerId]; ok && owner.IsBot {
		return nil, model.NewAppError("CreateBot", "plugin_api.bot_cant_create_bot", nil, "", http.StatusBadRequest)
	}
	return f.createBotLocked(&b)
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

// EnsureBotUser mirrors PluginAPI.EnsureBotUser (OwnerId = the plugin id) -> app.EnsureBot:
// nil bot / empty username are plain errors ("passed a nil bot", "passed a bot with no
// username"); the bot id kept under the plugin's KV key "mmi_botid" is used when that bot
// exists (its username, display name and description patched; a patch the model refuses:
// "failed to patch bot: ..."); else a user with that username is used (a bot: its id is
// stored under mmi_botid; a human: the server logs an error and still returns the id);
// else app.CreateBot ("failed to create bot: <AppError>") and the id is stored under mmi_botid.
func (f *FakeAPI) EnsureBotUser(bot *model.Bot) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("EnsureBotUser")
	if bot == nil {
		return "", errors.New("passed a nil bot")
	}
	want := *bot
	want.OwnerId = f.pluginID
	if want.Username == "" {
		return "", errors.New("passed a bot with no username")
	}
	if idBytes, ok := f.getLocked(botUserKey); ok {
		if b, ok := f.bots[string(idBytes)]; ok {
			patched := *b
			patched.Patch(&model.BotPatch{Username: &want.Username, DisplayName: &want.DisplayName, Description: &want.Description})
			patched.UpdateAt = model.GetMillisForTime(f.now())
			for _, u := range f.users {
				if u.Username == patched.Username && u.Id != b.UserId { // app.PatchBot: the user update conflicts
					return "", fmt.Errorf("failed to patch bot: %w", model.NewAppError("PatchBot", "app.user.save.username_exists.app_error", nil, "", http.StatusBadRequest))
				}
			}
			if err := patched.IsValid(); err != nil {
				return "", fmt.Errorf("failed to patch bot: %w", err)
			}
			*b = patched
			if u, ok := f.users[b.UserId]; ok {
				u.Username, u.FirstName = b.Username, b.DisplayName
			}
			return b.UserId, nil
		}
	}
	for _, u := range f.users {
		if u.Username == want.Username {
			if u.IsBot {
				f.setLocked(botUserKey, []byte(u.Id), 0)
			} else {
				f.serverLogLocked("error", "Plugin attempted to use an account that already exists. Convert user to a bot account in the CLI by running 'mattermost user convert <username> --bot'.", "username", u.Username, "user_id", u.Id)
			}
			return u.Id, nil
		}
	}
	b, appErr := f.createBotLocked(&want)
	if appErr != nil {
		return "", fmt.Errorf("failed to create bot: %w", appErr)
	}
	f.setLocked(botUserKey, []byte(b.UserId), 0)
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

// RegisterCommand mirrors app.RegisterPluginCommand: an empty trigger is refused ("invalid
// command"), AutocompleteData.IsValid is run ("invalid autocomplete data in command: <why>",
// e.g. "Positional argument can not be optional"), plugin-relative dynamic list URLs are
// made absolute under /plugins/<id>, a nil AutocompleteData becomes
// NewAutocompleteData(trigger, hint, desc); the command stored (and recorded by Commands)
// is the server's copy: lowercased trigger, only the fields the server keeps. The errors are
// plain errors, as the server's (the plugin receives their text).
func (f *FakeAPI) RegisterCommand(command *model.Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("RegisterCommand")
	if command == nil || command.Trigger == "" {
		return errors.New("invalid command")
	}
	ad := command.AutocompleteData
	if ad != nil {
		if err := ad.IsValid(); err != nil {
			return fmt.Errorf("invalid autocomplete data in command: %w", err)
		}
	}
	if ad == nil {
		ad = model.NewAutocompleteData(command.Trigger, command.AutoCompleteHint, command.AutoCompleteDesc)
	} else {
		baseURL, err := url.Parse("/plugins/" + f.pluginID)
		if err != nil {
			return fmt.Errorf("Can't parse url %s: %w", "/plugins/"+f.pluginID, err)
		}
		if err := ad.UpdateRelativeURLsForPluginCommands(baseURL); err != nil {
			return fmt.Errorf("Can't update relative urls for plugin commands: %w", err)
		}
	}
	f.commands = append(f.commands, &model.Command{
		Trigger:              strings.ToLower(command.Trigger),
		TeamId:               command.TeamId,
		AutoComplete:         command.AutoComplete,
		AutoCompleteDesc:     command.AutoCompleteDesc,
		AutoCompleteHint:     command.AutoCompleteHint,
		DisplayName:          command.DisplayName,
		AutocompleteData:     ad,
		AutocompleteIconData: command.AutocompleteIconData,
	})
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

// PublishWebSocketEvent records the event. The server validates nothing here, but
// PlatformService.PublishSkipClusterSend reads broadcast.UserId, so a nil broadcast would
// panic in the server: the fake records it and logs it as a server error.
func (f *FakeAPI) PublishWebSocketEvent(event string, payload map[string]any, broadcast *model.WebsocketBroadcast) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("PublishWebSocketEvent")
	if broadcast == nil {
		f.serverLogLocked("error", "PublishWebSocketEvent with a nil broadcast: the server dereferences it (nil pointer panic in PlatformService.PublishSkipClusterSend)", "event", event)
	}
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

// VerifyTriggerIDs makes OpenInteractiveDialog check trigger ids as the server does
// (signature by the server's key, at most OutgoingIntegrationRequestsTimeout = 30 s old):
// only ids from NewTriggerID pass. On by default; off, any non-empty id passes (for tests of
// the fake itself).
func (f *FakeAPI) VerifyTriggerIDs(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verifyTriggers = on
}

// NewTriggerID returns a trigger id as the server puts into an action click or slash
// command for userID (model.GenerateTriggerId, signed with the fake's key).
func (f *FakeAPI) NewTriggerID(userID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, id, err := model.GenerateTriggerId(userID, f.triggerKeyLocked())
	if err != nil {
		panic(err)
	}
	return id
}

func (f *FakeAPI) triggerKeyLocked() *ecdsa.PrivateKey {
	if f.triggerKey == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		f.triggerKey = k
	}
	return f.triggerKey
}

// OpenInteractiveDialog mirrors app.OpenInteractiveDialog: the trigger id is decoded and
// verified (model.DecodeAndVerifyTriggerId: interactive_message.decode_trigger_id.*, 400);
// without VerifyTriggerIDs only the check any made-up id fails is kept (an empty one:
// interactive_message.decode_trigger_id.missing_data). OpenDialogRequest.IsValid (URL,
// title, elements) is only a server log warning ("Interactive dialog is invalid"); the
// dialog is still sent.
func (f *FakeAPI) OpenInteractiveDialog(dialog model.OpenDialogRequest) *model.AppError {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("OpenInteractiveDialog")
	if f.verifyTriggers {
		if _, _, err := dialog.DecodeAndVerifyTriggerId(f.triggerKeyLocked(), model.OutgoingIntegrationRequestsDefaultTimeout*time.Second); err != nil {
			return err
		}
	} else if dialog.TriggerId == "" {
		return model.NewAppError("DecodeAndVerifyTriggerId", "interactive_message.decode_trigger_id.missing_data", nil, "empty trigger id", http.StatusBadRequest)
	}
	if err := dialog.IsValid(); err != nil {
		f.serverLogLocked("warn", "Interactive dialog is invalid", "error", err.Error())
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

// PluginSideAPI is the API as the plugin sees it through NewHost: the same fake, except
// that CreatePost marks the post from_plugin = "true" first, as PluginAPI.CreatePost does
// (tests that call FakeAPI.CreatePost directly stand for posts made by users).
type PluginSideAPI struct {
	*FakeAPI
}

// ForPlugin returns the plugin's view of the fake (what NewHost hands the Environment): every
// call passes the fault windows of InjectFault first.
func (f *FakeAPI) ForPlugin() plugin.API {
	return FaultyAPI{API: PluginSideAPI{f}, Faults: f}
}

func (p PluginSideAPI) CreatePost(post *model.Post) (*model.Post, *model.AppError) {
	if post != nil {
		post = post.Clone()
		post.AddProp(model.PostPropsFromPlugin, "true")
	}
	return p.FakeAPI.CreatePost(post)
}
