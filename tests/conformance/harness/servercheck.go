package harness

// What the real server checks when a plugin calls the API, for the methods FakeAPI models.
// The server's app and store code is not importable here (server/v8 needs a database), so
// the fake calls the same validators from the model package (server/public v0.3.0, the
// version the harness pins) at the same points, and mirrors the few checks the server does
// in app or store code, each with a comment naming the server function it mirrors
// (github.com/mattermost/mattermost/server/v8 channels/app and channels/store/sqlstore).

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

// MaxPostSize is the rune limit of Post.Message the server passes to Post.IsValid:
// SqlPostStore.determineMaxPostSize = max(width of Posts.Message / 4, PostMessageMaxRunesV2);
// the Postgres column is VARCHAR(65535), so 16383 runes.
const MaxPostSize = model.PostMessageMaxRunesV2

// botUserKey is the KV key app.EnsureBot keeps the bot's user id under, in the plugin's own
// KV namespace (app/bot.go: internalKeyPrefix + "botid"); the plugin's KVList sees it.
const botUserKey = "mmi_botid"

// DefaultPluginID is the plugin id a FakeAPI uses until SetPluginID (NewHost sets the
// manifest's id).
const DefaultPluginID = "claude-code"

// standInID is what the fake hands Post.IsValid in place of an id the tests chose: the
// fake's users, channels and posts may have readable ids ("c-main", "u-owner") that the
// server would never issue, so the id FORMAT is the one part of Post.IsValid the fake does
// not hold them to. Their existence is checked before, as the server's lookups do.
func standInID(id string) string {
	if id == "" || model.IsValidId(id) {
		return id
	}
	return "fakeapistandinid0000000000"
}

// postIsValid runs model.Post.IsValid(MaxPostSize) as SqlPostStore.Save / Update do after
// PreSave / PreCommit: message length, hashtags, type, file ids, props size (PostPropsMaxRunes).
func postIsValid(p *model.Post) *model.AppError {
	v := p.Clone()
	v.Id = standInID(v.Id)
	v.UserId = standInID(v.UserId)
	v.ChannelId = standInID(v.ChannelId)
	v.RootId = standInID(v.RootId)
	return v.IsValid(MaxPostSize)
}

// kvKeyCheck is what the store refuses a key for: PluginKeyValue.IsValid (non-empty plugin
// id and key, key <= KeyValueKeyMaxRunes = 150 runes; SqlPluginStore.SaveOrUpdate /
// CompareAndSet / CompareAndDelete), then what Postgres refuses in a text column (a NUL byte
// or invalid UTF-8: "invalid byte sequence for encoding UTF8"), which the app reports as
// the internal error id errID (500).
func kvKeyCheck(pluginID, key, where, errID string) *model.AppError {
	kv := model.PluginKeyValue{PluginId: pluginID, Key: key}
	if err := kv.IsValid(); err != nil {
		return err
	}
	return kvKeyPostgresCheck(key, where, errID)
}

func kvKeyPostgresCheck(key, where, errID string) *model.AppError {
	if strings.IndexByte(key, 0) >= 0 || !utf8.ValidString(key) {
		return model.NewAppError(where, errID, nil, "invalid byte sequence for encoding \"UTF8\" in key", http.StatusInternalServerError)
	}
	return nil
}

// serverLogger receives what model validators log on the server's logger
// (Post.ValidateProps calls Warn only) and records it as a server log line.
type serverLogger struct {
	mlog.LoggerIFace // nil: only the methods below are used by the validators called
	add              func(level, msg string, kv []any)
}

func (l serverLogger) Warn(msg string, fields ...mlog.Field) { l.add("warn", msg, fieldsKV(fields)) }

func (l serverLogger) Error(msg string, fields ...mlog.Field) { l.add("error", msg, fieldsKV(fields)) }

func fieldsKV(fields []mlog.Field) []any {
	out := make([]any, 0, 2*len(fields))
	for _, fl := range fields {
		var b strings.Builder
		if err := fl.ValueString(&b, func(string) bool { return false }); err != nil {
			fmt.Fprintf(&b, "%v", fl.Interface)
		}
		out = append(out, fl.Key, b.String())
	}
	return out
}
