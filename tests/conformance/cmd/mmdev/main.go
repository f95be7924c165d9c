// mmdev puts the plugin in front of people: `deploy` installs a tarball into a running
// Mattermost (make deploy), `serve` runs a local real server with the plugin installed and
// configured until Ctrl-C (make server).
//
//	mmdev deploy -url https://chat.example.com -token <admin personal access token> dist/claude-code-X.tar.gz
//	mmdev serve -tarball dist/claude-code-X.tar.gz -cli tools/claude/node_modules/.bin/claude
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"claudecode/conformance/realserver"

	"github.com/mattermost/mattermost/server/public/model"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mmdev deploy|serve [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "deploy":
		err = deploy(os.Args[2:])
	case "serve":
		err = serve(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: deploy or serve", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mmdev:", err)
		os.Exit(1)
	}
}

// deploy uploads (replacing an installed version) and enables, as System Console does.
func deploy(args []string) error {
	fs := flag.NewFlagSet("deploy", flag.ExitOnError)
	url := fs.String("url", os.Getenv("MM_SERVICESETTINGS_SITEURL"), "the server's URL (default $MM_SERVICESETTINGS_SITEURL)")
	token := fs.String("token", os.Getenv("MM_ADMIN_TOKEN"), "a system admin's personal access token (default $MM_ADMIN_TOKEN)")
	_ = fs.Parse(args)
	if *url == "" || *token == "" || fs.NArg() != 1 {
		return fmt.Errorf("deploy needs -url (or MM_SERVICESETTINGS_SITEURL), -token (or MM_ADMIN_TOKEN) and the tarball")
	}
	c := model.NewAPIv4Client(*url)
	c.SetToken(*token)
	ctx := context.Background()
	m, err := realserver.Install(ctx, c, fs.Arg(0))
	if err != nil {
		return err
	}
	if err := realserver.WaitActive(ctx, c, time.Minute); err != nil {
		return err
	}
	fmt.Printf("%s %s is installed and running on %s\n", m.Id, m.Version, *url)
	return nil
}

// serve runs PostgreSQL and Mattermost on loopback with the plugin configured, and people to
// log in as, until interrupted.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	tarball := fs.String("tarball", "", "the plugin tarball")
	cli := fs.String("cli", "", "the Claude Code CLI")
	dir := fs.String("dir", "", "state directory (default: a new temporary one, removed at exit)")
	projects := fs.String("projects", "", "allowed project root (default: <dir>/projects)")
	_ = fs.Parse(args)
	build, err := realserver.BuildFromEnv()
	if err != nil {
		return err
	}
	if *tarball == "" || *cli == "" {
		return fmt.Errorf("serve needs -tarball and -cli")
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "claude-code-server-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	if err := os.Chmod(*dir, 0o755); err != nil {
		return err
	}
	if *projects == "" {
		*projects = filepath.Join(*dir, "projects")
	}
	if err := os.MkdirAll(filepath.Join(*projects, "demo"), 0o755); err != nil {
		return err
	}
	pg, err := realserver.StartPostgres(filepath.Join(*dir, "pg"))
	if err != nil {
		return err
	}
	defer pg.Stop()
	srv, err := realserver.NewServer(build, filepath.Join(*dir, "server"), pg.DSN())
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Stop()

	const password = "Claude-Code-1"
	admin := model.NewAPIv4Client(srv.URL)
	users := map[string]*model.User{}
	for _, name := range []string{"admin", "alice", "bob"} {
		u, _, err := admin.CreateUser(ctx, &model.User{Username: name, Email: name + "@localhost.test", Password: password})
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		users[name] = u
		if name == "admin" { // the first account is the system admin
			if _, _, err := admin.Login(ctx, name, password); err != nil {
				return err
			}
		}
	}
	team, _, err := admin.CreateTeam(ctx, &model.Team{Name: "dev", DisplayName: "Dev", Type: model.TeamOpen})
	if err != nil {
		return err
	}
	channel, _, err := admin.CreateChannel(ctx, &model.Channel{TeamId: team.Id, Name: "claude", DisplayName: "Claude", Type: model.ChannelTypeOpen})
	if err != nil {
		return err
	}
	for _, u := range users {
		if _, _, err := admin.AddTeamMember(ctx, team.Id, u.Id); err != nil {
			return err
		}
		if _, _, err := admin.AddChannelMember(ctx, channel.Id, u.Id); err != nil {
			return err
		}
	}
	if _, err := realserver.Install(ctx, admin, *tarball); err != nil {
		return err
	}
	settings := map[string]any{"AllowedProjectRoots": *projects, "ClaudeCliPath": *cli}
	if key := os.Getenv("ANTHROPIC_API_KEY"); key != "" {
		settings["AnthropicApiKey"] = key
	}
	if base := os.Getenv("ANTHROPIC_BASE_URL"); base != "" {
		settings["AnthropicBaseUrl"] = base
	}
	if err := realserver.Configure(ctx, admin, settings); err != nil {
		return err
	}
	if err := realserver.WaitActive(ctx, admin, time.Minute); err != nil {
		return err
	}
	fmt.Printf(`Mattermost with the claude-code plugin: %s
  logins (password %s): admin (system admin), alice, bob; team "dev", channel "claude"
  try: /claude start %s
  server log: %s
Ctrl-C stops the server and PostgreSQL.
`, srv.URL, password, filepath.Join(*projects, "demo"), srv.LogFile)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	fmt.Println("stopping…")
	return nil
}
