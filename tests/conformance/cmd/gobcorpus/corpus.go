package main

// The corpus: every item is N>=1 values of ONE Go type, encoded in order on
// one fresh gob stream. Key = the Rust type the Rust side decodes into.
//
// Rules that keep gob round trips exact: nil (never empty) slices, no nil
// pointers inside slices, no pointers to zero scalars (gob drops them), valid
// UTF-8 only.

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

type Item struct {
	Key     string
	Variant string
	Values  []any
}

func (it Item) Name() string { return it.Key + "__" + it.Variant }

// GoType is the reflect type of every value in the item.
func (it Item) GoType() reflect.Type { return reflect.TypeOf(it.Values[0]) }

func item(key, variant string, vs ...any) Item { return Item{key, variant, vs} }

// Realistic ids used across the corpus.
var (
	idUser    = mmid("user")
	idBot     = mmid("bot")
	idChannel = mmid("channel")
	idTeam    = mmid("team")
	idPost    = mmid("post")
	idRoot    = mmid("root")
	idSession = mmid("session")
	idReq     = mmid("request")
)

const siteURL = "https://chat.example.com"
const pluginID = "com.example.claude"

var baseTime = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

func ms(d time.Duration) int64 { return baseTime.Add(d).UnixMilli() }

func typicalAttachment() *model.SlackAttachment {
	button := func(id, name, style string) *model.PostAction {
		return &model.PostAction{
			Id: id, Type: model.PostActionTypeButton, Name: name, Style: style,
			Integration: &model.PostActionIntegration{
				URL: siteURL + "/plugins/" + pluginID + "/api/v1/actions/" + id,
				Context: map[string]any{
					"action":     id,
					"request_id": idReq,
					"user_id":    idUser,
				},
			},
		}
	}
	return &model.SlackAttachment{
		Fallback: "Claude suggested a change",
		Color:    "#3f51b5",
		Title:    "Proposed change",
		Text:     "Rotate the credentials with a dual-user scheme: create user B, switch the app, drop user A.",
		Actions:  []*model.PostAction{button("approve", "Approve", "primary"), button("reject", "Reject", "danger")},
	}
}

func typicalPost() *model.Post {
	msg := "Here is how to rotate the database credentials without downtime:\n\n" +
		"1. Create a second DB user with the same grants.\n" +
		"2. Deploy the app with the new user's password from the secret store.\n" +
		"3. Verify connections have moved (`pg_stat_activity`), then drop the old user.\n\n" +
		"Want me to open a change request for this? :rocket:"
	return &model.Post{
		Id: idPost, CreateAt: ms(0), UpdateAt: ms(0), UserId: idBot, ChannelId: idChannel,
		RootId: idRoot, Message: msg,
		Props: model.StringInterface{
			"from_bot":    "true",
			"attachments": []*model.SlackAttachment{typicalAttachment()},
			"claude_turn": int64(3),
		},
	}
}

func typicalCommandArgs() *model.CommandArgs {
	return &model.CommandArgs{
		UserId: idUser, ChannelId: idChannel, TeamId: idTeam, RootId: idRoot, ParentId: idRoot,
		TriggerId: "NGl6N3dwdHB0aWJuOGNlNGE0Nm1oeGF1d3c6OTVlN2NmdDRpdHJvM2pqOHV3ZXJhcHB3Z2E6MTc3MzUwMTM2NjUzNTpNRVFDSUJLSVB4",
		Command:   "/claude ask how do I rotate the database credentials without downtime?",
		SiteURL:   siteURL,
	}
}

func fullAppError() *model.AppError {
	return &model.AppError{
		Id: "app.plugin.command.error", Message: "Unable to execute the command.",
		DetailedError: "claude: upstream timeout after 30s", RequestId: idReq,
		StatusCode: 504, Where: "Plugin.ExecuteCommand", SkipTranslation: true,
	}
}

func fullCommand() *model.Command {
	ask := &model.AutocompleteData{
		Trigger: "ask", Hint: "[question]", HelpText: "Ask Claude a question",
		Arguments: []*model.AutocompleteArg{{
			Name: "question", HelpText: "What to ask", Type: model.AutocompleteArgTypeText, Required: true,
			Data: &model.AutocompleteTextArg{Hint: "a question", Pattern: ".+"},
		}},
	}
	model_ := &model.AutocompleteData{
		Trigger: "model", HelpText: "Pick a model",
		Arguments: []*model.AutocompleteArg{{
			Name: "name", Type: model.AutocompleteArgTypeStaticList,
			Data: &model.AutocompleteStaticListArg{PossibleArguments: []model.AutocompleteListItem{
				{Item: "opus", Hint: "best", HelpText: "Most capable"},
				{Item: "haiku", Hint: "fast", HelpText: "Fastest"},
			}},
		}},
	}
	thread := &model.AutocompleteData{
		Trigger: "thread", HelpText: "Continue a thread",
		Arguments: []*model.AutocompleteArg{{
			Name: "id", Type: model.AutocompleteArgTypeDynamicList,
			Data: &model.AutocompleteDynamicListArg{FetchURL: "/plugins/" + pluginID + "/autocomplete/threads"},
		}},
	}
	return fillAll(&model.Command{
		Trigger: "claude", AutoComplete: true, DisplayName: "Claude", Description: "Talk to Claude",
		AutocompleteData: &model.AutocompleteData{
			Trigger: "claude", Hint: "[ask|model|thread]", HelpText: "Claude assistant",
			Arguments: []*model.AutocompleteArg{{Name: "verbose", Type: model.AutocompleteArgTypeText,
				Data: &model.AutocompleteTextArg{Hint: "--verbose"}}},
			SubCommands: []*model.AutocompleteData{ask, model_, thread},
		},
	})
}

func unicodeText() string {
	return "Hello · Привет · こんにちは · 你好 · مرحبا · שלום · नमस्ते · 안녕하세요 · Γειά σου · " +
		"ሰላም · สวัสดี · 🎉👍🏽👨‍👩‍👧‍👦🇯🇵 · e\u0301 · \u200b\u200d · 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 · \U0010FFFD"
}

func bigMessage() string {
	const line = "The quick brown fox jumps over the lazy dog; 0123456789.\n"
	s := strings.Repeat(line, 65536/len(line)+1)
	return s[:65536]
}

func nestedProps() map[string]any {
	att := typicalAttachment()
	att.Fields = []*model.SlackAttachmentField{
		{Title: "Status", Value: "open", Short: true},
		{Title: "Count", Value: int64(42)},
	}
	att.Timestamp = int64(1773501366)
	return map[string]any{
		"str":       "value",
		"int":       7,
		"int_zero":  0,
		"int_neg":   -1234567,
		"int64":     int64(-9007199254740993),
		"int64max":  int64(9223372036854775807),
		"float":     3.5,
		"float_neg": -0.001953125,
		"float_big": 1.7976931348623157e308,
		"true":      true,
		"false":     false,
		"nil":       nil,
		"bytes":     []byte{0, 1, 2, 0xfe, 0xff},
		"list":      []any{"a", 1, int64(2), 2.5, true, nil, []any{"inner"}, map[string]any{"k": "v"}},
		"list_of_maps": []any{
			map[string]any{"name": "first", "n": int64(1)},
			map[string]any{"name": "second", "n": int64(2), "tags": []any{"x", "y"}},
		},
		"map": map[string]any{
			"nested": map[string]any{"deeper": map[string]any{"deepest": -2.75}},
			"empty":  map[string]any{},
		},
		"attachments": []*model.SlackAttachment{att},
	}
}

func fullProps() map[string]any {
	return map[string]any{"s": "v", "i": 1, "i64": int64(2), "f": 0.5, "b": true, "n": nil}
}

func scalarProps() map[string]any {
	return map[string]any{
		"int8": int8(-8), "int16": int16(-16), "int32": int32(-32), "uint": uint(1),
		"uint8": uint8(8), "uint16": uint16(16), "uint32": uint32(32), "uint64": uint64(18446744073709551615),
		"float32": float32(1.5), "complex128": complex(1.5, -2), "strings": []string{"a", "b"},
		"int64s": []int64{1, -1},
	}
}

func serveHTTPArgs() *plugin.Z_ServeHTTPArgs {
	u, err := url.Parse("/api/v1/ask?thread=" + idRoot + "&q=%C3%A9t%C3%A9")
	if err != nil {
		panic(err)
	}
	return &plugin.Z_ServeHTTPArgs{
		ResponseWriterStream: 7,
		RequestBodyStream:    9,
		Request: &plugin.HTTPRequestSubset{
			Method: "POST", URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{
				"Mattermost-User-Id": {idUser},
				"Content-Type":       {"application/json"},
				"Accept-Language":    {"en-US,en;q=0.9"},
				"X-Forwarded-For":    {"203.0.113.9", "10.0.0.1"},
			},
			Host:       "chat.example.com",
			RemoteAddr: "10.0.0.7:53122",
			RequestURI: "/plugins/" + pluginID + "/api/v1/ask?thread=" + idRoot + "&q=%C3%A9t%C3%A9",
		},
		Context: &plugin.Context{
			RequestId: idReq, IPAddress: "203.0.113.9", AcceptLanguage: "en-US,en;q=0.9",
			UserAgent: "Mozilla/5.0", SessionId: idSession,
		},
	}
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// Corpus returns all items in a fixed order.
func Corpus() []Item {
	zoned := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("IST", 5*3600+30*60))
	post2 := &model.Post{Id: mmid("p2"), UserId: idBot, ChannelId: idChannel, Message: "with attachments",
		Props: model.StringInterface{"attachments": []*model.SlackAttachment{typicalAttachment()}}}
	post3 := &model.Post{Id: mmid("p3"), UserId: idUser, ChannelId: idChannel, Message: "json-like props",
		Props: model.StringInterface{"list": []any{map[string]any{"a": 1.5, "b": []any{"c"}}}, "n": int64(-5)}}

	return []Item{
		// Post
		item("Post", "full", fillAll(&model.Post{Message: "full post", Props: model.StringInterface{
			"from_bot": "true", "attachments": []*model.SlackAttachment{fillAll(typicalAttachment())}}})),
		item("Post", "empty", &model.Post{}),
		item("Post", "unicode", &model.Post{Id: idPost, UserId: idUser, ChannelId: idChannel, Message: unicodeText(),
			Props: model.StringInterface{"ünï": "cödé ✓ 🚀"}, Hashtags: "#café #日本"}),
		item("Post", "big", &model.Post{Id: idPost, UserId: idUser, ChannelId: idChannel, Message: bigMessage()}),
		item("Post", "typical", typicalPost()),
		item("Post", "stream3", &model.Post{Id: mmid("p1"), UserId: idUser, ChannelId: idChannel, Message: "first",
			Props: model.StringInterface{"a": "b"}}, post2, post3),

		item("CommandArgs", "full", fillAll(&model.CommandArgs{})),
		item("CommandArgs", "empty", &model.CommandArgs{}),
		item("CommandArgs", "typical", typicalCommandArgs()),

		item("CommandResponse", "full", fillAll(&model.CommandResponse{
			ResponseType: model.CommandResponseTypeEphemeral, Text: "Thinking…",
			Attachments: []*model.SlackAttachment{typicalAttachment()},
			ExtraResponses: []*model.CommandResponse{
				{ResponseType: model.CommandResponseTypeInChannel, Text: "extra 1",
					Attachments: []*model.SlackAttachment{typicalAttachment()}},
				{Text: "extra 2", ExtraResponses: []*model.CommandResponse{{Text: "extra 2.1"}}},
			},
		})),
		item("CommandResponse", "empty", &model.CommandResponse{}),
		item("CommandResponse", "stream3",
			&model.CommandResponse{ResponseType: "ephemeral", Text: "one"},
			&model.CommandResponse{Text: "two", Props: model.StringInterface{"k": int64(1)}},
			&model.CommandResponse{Text: "three", Attachments: []*model.SlackAttachment{typicalAttachment()},
				ExtraResponses: []*model.CommandResponse{{Text: "nested"}}}),

		item("AppError", "full", fullAppError()),
		item("AppError", "empty", &model.AppError{}),

		item("Command", "full", fullCommand()),
		item("Command", "empty", &model.Command{}),

		item("Context", "full", fillAll(&plugin.Context{})),
		item("Context", "empty", &plugin.Context{}),

		item("PluginKVSetOptions", "full", model.PluginKVSetOptions{Atomic: true, OldValue: []byte("old"), ExpireInSeconds: 3600}),
		item("PluginKVSetOptions", "empty", model.PluginKVSetOptions{}),

		item("WebsocketBroadcast", "full", fillAll(&model.WebsocketBroadcast{})),
		item("WebsocketBroadcast", "empty", &model.WebsocketBroadcast{}),

		item("SlackAttachment", "full", fillAll(typicalAttachment())),
		item("SlackAttachment", "empty", &model.SlackAttachment{}),

		item("PostAction", "full", fillAll(&model.PostAction{})),
		item("PostAction", "empty", &model.PostAction{}),

		item("FileInfo", "full", fillAll(&model.FileInfo{})),
		item("FileInfo", "empty", &model.FileInfo{}),

		item("Bot", "full", fillAll(&model.Bot{})),
		item("Bot", "empty", &model.Bot{}),

		item("ChannelMember", "full", fillAll(&model.ChannelMember{})),
		item("ChannelMember", "empty", &model.ChannelMember{}),

		item("Channel", "full", fillAll(&model.Channel{})),
		item("Channel", "empty", &model.Channel{}),

		item("User", "full", fillAll(&model.User{})),
		item("User", "empty", &model.User{}),

		item("PostList", "full", fillAll(&model.PostList{})),
		item("PostList", "empty", &model.PostList{}),

		item("PluginStatus", "full", fillAll(&model.PluginStatus{})),
		item("PluginStatus", "empty", &model.PluginStatus{}),

		item("PluginClusterEvent", "full", model.PluginClusterEvent{Id: "cache-invalidate", Data: []byte(`{"key":"k1"}`)}),
		item("PluginClusterEvent", "empty", model.PluginClusterEvent{}),

		item("PluginClusterEventSendOptions", "full", model.PluginClusterEventSendOptions{
			SendType: model.PluginClusterEventSendTypeReliable, TargetId: mmid("node")}),
		item("PluginClusterEventSendOptions", "empty", model.PluginClusterEventSendOptions{}),

		item("OpenDialogRequest", "full", fillAll(model.OpenDialogRequest{})),
		item("OpenDialogRequest", "empty", model.OpenDialogRequest{}),

		item("ErrorString", "full", &plugin.ErrorString{Code: 1, Err: "EOF"}),
		item("ErrorString", "empty", &plugin.ErrorString{}),

		item("Time", "utc", baseTime),
		item("Time", "zoned", zoned),
		item("Time", "zero", time.Time{}),

		item("Props", "full", fullProps()),
		item("Props", "empty", map[string]any{}),
		item("Props", "nested", nestedProps()),
		item("Props", "scalars", scalarProps()),
		item("Props", "stream3", map[string]any{"a": "b"}, map[string]any{"l": []any{int64(1)}},
			map[string]any{"m": map[string]any{"x": nil}, "att": []*model.SlackAttachment{{Text: "t"}}, "raw": []byte("r")}),

		// Z types from package plugin.
		item("Z_ExecuteCommandArgs", "full", &plugin.Z_ExecuteCommandArgs{A: fillAll(&plugin.Context{}), B: fillAll(&model.CommandArgs{})}),
		item("Z_ExecuteCommandArgs", "empty", &plugin.Z_ExecuteCommandArgs{}),
		item("Z_ExecuteCommandArgs", "typical", &plugin.Z_ExecuteCommandArgs{
			A: &plugin.Context{RequestId: idReq, SessionId: idSession}, B: typicalCommandArgs()}),
		item("Z_ExecuteCommandReturns", "full", fillAll(&plugin.Z_ExecuteCommandReturns{})),
		item("Z_ExecuteCommandReturns", "empty", &plugin.Z_ExecuteCommandReturns{}),
		item("Z_OnActivateArgs", "full", &plugin.Z_OnActivateArgs{APIMuxId: 2, DriverMuxId: 3}),
		item("Z_OnActivateArgs", "empty", &plugin.Z_OnActivateArgs{}),
		item("Z_OnActivateReturns", "empty", &plugin.Z_OnActivateReturns{}),
		item("Z_OnActivateReturns", "full", &plugin.Z_OnActivateReturns{A: fullAppError()}),
		item("Z_OnActivateReturns", "apperror", &plugin.Z_OnActivateReturns{A: &model.AppError{Id: "x", StatusCode: 400}}),
		item("Z_OnActivateReturns", "errorstring", &plugin.Z_OnActivateReturns{A: &plugin.ErrorString{Err: "activation failed: missing API key"}}),
		item("Z_RegisterCommandArgs", "full", &plugin.Z_RegisterCommandArgs{A: fullCommand()}),
		item("Z_RegisterCommandArgs", "empty", &plugin.Z_RegisterCommandArgs{}),
		item("Z_RegisterCommandReturns", "empty", &plugin.Z_RegisterCommandReturns{}),
		item("Z_RegisterCommandReturns", "full", &plugin.Z_RegisterCommandReturns{A: &plugin.ErrorString{Code: 2, Err: "sql: no rows in result set"}}),
		item("Z_RegisterCommandReturns", "apperror", &plugin.Z_RegisterCommandReturns{A: fullAppError()}),
		item("Z_MessageHasBeenPostedArgs", "full", &plugin.Z_MessageHasBeenPostedArgs{A: fillAll(&plugin.Context{}), B: fillAll(typicalPost())}),
		item("Z_MessageHasBeenPostedArgs", "empty", &plugin.Z_MessageHasBeenPostedArgs{}),
		item("Z_KVSetArgs", "full", &plugin.Z_KVSetArgs{A: "conversation:" + idRoot, B: []byte(`{"turns":3}`)}),
		item("Z_KVSetArgs", "empty", &plugin.Z_KVSetArgs{}),
		item("Z_KVSetArgs", "allbytes", &plugin.Z_KVSetArgs{A: "all", B: allBytes()}),
		item("Z_KVGetReturns", "full", &plugin.Z_KVGetReturns{A: []byte("value"), B: fullAppError()}),
		item("Z_KVGetReturns", "empty", &plugin.Z_KVGetReturns{}),
		item("Z_KVSetWithOptionsArgs", "full", &plugin.Z_KVSetWithOptionsArgs{A: "lock", B: []byte("new"),
			C: model.PluginKVSetOptions{Atomic: true, OldValue: []byte("old"), ExpireInSeconds: 60}}),
		item("Z_KVSetWithOptionsArgs", "empty", &plugin.Z_KVSetWithOptionsArgs{}),
		item("Z_KVListReturns", "full", &plugin.Z_KVListReturns{A: []string{"k1", "k2", "k3"}, B: fullAppError()}),
		item("Z_KVListReturns", "empty", &plugin.Z_KVListReturns{}),
		item("Z_CreatePostArgs", "full", &plugin.Z_CreatePostArgs{A: fillAll(&model.Post{})}),
		item("Z_CreatePostArgs", "empty", &plugin.Z_CreatePostArgs{}),
		item("Z_CreatePostArgs", "typical", &plugin.Z_CreatePostArgs{A: typicalPost()}),
		item("Z_CreatePostReturns", "full", &plugin.Z_CreatePostReturns{A: fillAll(typicalPost()), B: fullAppError()}),
		item("Z_CreatePostReturns", "empty", &plugin.Z_CreatePostReturns{}),
		item("Z_UploadFileArgs", "full", &plugin.Z_UploadFileArgs{A: allBytes(), B: idChannel, C: "bash-output.txt"}),
		item("Z_UploadFileArgs", "empty", &plugin.Z_UploadFileArgs{}),
		item("Z_UploadFileReturns", "full", &plugin.Z_UploadFileReturns{A: fillAll(&model.FileInfo{}), B: fullAppError()}),
		item("Z_UploadFileReturns", "empty", &plugin.Z_UploadFileReturns{}),
		item("Z_SendEphemeralPostArgs", "full", &plugin.Z_SendEphemeralPostArgs{A: idUser, B: fillAll(typicalPost())}),
		item("Z_SendEphemeralPostArgs", "empty", &plugin.Z_SendEphemeralPostArgs{}),
		item("Z_GetPostThreadReturns", "full", fillAll(&plugin.Z_GetPostThreadReturns{})),
		item("Z_GetPostThreadReturns", "empty", &plugin.Z_GetPostThreadReturns{}),
		item("Z_PublishWebSocketEventArgs", "full", &plugin.Z_PublishWebSocketEventArgs{A: "stream_chunk",
			B: map[string]any{"post_id": idPost, "chunk": "Hello", "seq": int64(4), "done": false},
			C: fillAll(&model.WebsocketBroadcast{})}),
		item("Z_PublishWebSocketEventArgs", "empty", &plugin.Z_PublishWebSocketEventArgs{}),
		item("Z_LogDebugArgs", "full", &plugin.Z_LogDebugArgs{A: "request finished", B: []any{"user_id", idUser, "duration", "1.25s"}}),
		item("Z_LogDebugArgs", "empty", &plugin.Z_LogDebugArgs{}),
		item("Z_LogDebugArgs", "stream3",
			&plugin.Z_LogDebugArgs{A: "one"},
			&plugin.Z_LogDebugArgs{A: "two", B: []any{"k", "v"}},
			&plugin.Z_LogDebugArgs{A: "three", B: []any{"n", int64(3), "ok", true, "err", &plugin.ErrorString{Err: "e"}}}),
		item("Z_EnsureBotUserReturns", "full", &plugin.Z_EnsureBotUserReturns{A: idBot, B: fullAppError()}),
		item("Z_EnsureBotUserReturns", "empty", &plugin.Z_EnsureBotUserReturns{}),
		item("Z_LoadPluginConfigurationArgsReturns", "full", &plugin.Z_LoadPluginConfigurationArgsReturns{
			A: []byte(`{"APIKey":"sk-test","Model":"opus","MaxTokens":4096}`)}),
		item("Z_LoadPluginConfigurationArgsReturns", "empty", &plugin.Z_LoadPluginConfigurationArgsReturns{}),
		item("Z_ServeHTTPArgs", "full", serveHTTPArgs()),
		item("Z_ServeHTTPArgs", "empty", &plugin.Z_ServeHTTPArgs{}),
		item("Z_OpenInteractiveDialogArgs", "full", &plugin.Z_OpenInteractiveDialogArgs{A: fillAll(model.OpenDialogRequest{})}),
		item("Z_OpenInteractiveDialogArgs", "empty", &plugin.Z_OpenInteractiveDialogArgs{}),
		item("Z_PublishPluginClusterEventArgs", "full", &plugin.Z_PublishPluginClusterEventArgs{
			A: model.PluginClusterEvent{Id: "evt", Data: []byte{1, 2, 3}},
			B: model.PluginClusterEventSendOptions{SendType: model.PluginClusterEventSendTypeBestEffort, TargetId: mmid("node")}}),
		item("Z_PublishPluginClusterEventArgs", "empty", &plugin.Z_PublishPluginClusterEventArgs{}),
		item("Z_GetPluginStatusReturns", "full", fillAll(&plugin.Z_GetPluginStatusReturns{})),
		item("Z_GetPluginStatusReturns", "empty", &plugin.Z_GetPluginStatusReturns{}),
	}
}
