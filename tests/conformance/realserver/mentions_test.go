package realserver

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

// hostileMentions are channel-wide mentions as the server's markdown and mention parser read
// them: an autolink or an emoji that starts after the keyword's punctuation ends markdown's
// text node there, and the server then reads `@all_`, `@here-`, `@channel.`. An autolink runs
// to the next whitespace, so each form goes in a reply of its own, after the member's mention.
var hostileMentions = []string{
	"@all_www.example.com",
	"@here-https://example.com",
	"@channel.http://x.io",
	"@all.:tada:",
	"@here-:smile:",
}

// What Claude writes notifies nobody channel-wide: for each form, the server tells the owner's
// websocket that the bot's reply mentions nobody, and the member's that it mentions them alone
// (a person's mention stays live: Claude may name someone). Each reply is one word, so the
// fake model streams it in one piece and the post is created holding all of it (the server
// notifies on create only).
func (w *world) stepHostileMentionsNotifyNoOne(t *testing.T) {
	tag := steps.RandHex(4)
	for i, form := range hostileMentions {
		marker := fmt.Sprintf("MENTIONS-%s-%d", tag, i)
		w.script(t, "mentions", fakemodel.TextTurn(marker+",@"+w.member.name+","+form, 0))
		before := postIDs(w.threadPosts(t))
		ownerMark, memberMark := w.owner.mark(), w.member.mark()
		w.mustSay(t, w.owner, w.channel, "/claude Say the mentions "+marker)
		w.waitDone(t, before, "the mentions turn")
		posted := func(p *person, mark int) (mentions []string, whole bool) {
			for _, ev := range p.eventsSince(mark, model.WebsocketEventPosted) {
				if post := postOf(ev); post != nil && post.UserId == w.botID && strings.Contains(post.Message, marker) {
					// The neutraliser puts an invisible joiner after the `@`.
					whole = whole || strings.Contains(strings.ReplaceAll(post.Message, "\u200d", ""), form)
					mentions = append(mentions, mentionsOf(ev)...)
				}
			}
			return mentions, whole
		}
		got, whole := posted(w.owner, ownerMark)
		if !whole {
			t.Fatalf("%s: no posted event to the owner held the whole reply", form)
		}
		if len(got) != 0 {
			t.Errorf("%s: the reply mentions %v for the owner, want nobody (a channel-wide mention got through)", form, got)
		}
		if got, _ = posted(w.member, memberMark); !slices.Equal(got, []string{w.member.user.Id}) {
			t.Errorf("%s: the reply mentions %v for the member, want [%s] (their own mention alone)", form, got, w.member.user.Id)
		}
	}
}
