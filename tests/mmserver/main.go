// The Mattermost server, built from the Go module proxy for the real-server tests
// (make e2e-server). It is the server's own entry point: the commands package's Run, plus the
// blank imports that register the built-in slash commands and the GitLab OAuth provider, and the
// enterprise placeholder package (no build tags, so no enterprise code).
package main

import (
	"os"

	"github.com/mattermost/mattermost/server/v8/cmd/mattermost/commands"

	_ "github.com/mattermost/mattermost/server/v8/channels/app/oauthproviders/gitlab"
	_ "github.com/mattermost/mattermost/server/v8/channels/app/slashcommands"
	_ "github.com/mattermost/mattermost/server/v8/enterprise"
)

func main() {
	if err := commands.Run(os.Args[1:]); err != nil {
		os.Exit(1)
	}
}
