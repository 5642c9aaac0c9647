package slack

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseCommand_ReadsEveryVerb(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want Command
	}{
		{"", Command{Verb: VerbHelp}},
		{"help", Command{Verb: VerbHelp}},
		{"  HELP  ", Command{Verb: VerbHelp}},
		{"list", Command{Verb: VerbList}},
		{"status", Command{Verb: VerbStatus}},
		{"status release-shop-1.2.3", Command{Verb: VerbStatus, ReleaseID: "release-shop-1.2.3"}},
		{"start shop 1.2.3", Command{Verb: VerbStart, Runbook: "shop", Version: "1.2.3"}},
		{
			"start shop 1.2.3 api=1.2.4 web=2.0.0-rc.1+build.7",
			Command{Verb: VerbStart, Runbook: "shop", Version: "1.2.3", Components: []ComponentVersion{
				{Name: "api", Version: "1.2.4"}, {Name: "web", Version: "2.0.0-rc.1+build.7"},
			}},
		},
		{"Start\tshop\u00a01.2.3", Command{Verb: VerbStart, Runbook: "shop", Version: "1.2.3"}},
		{"pause release-shop-1.2.3", Command{Verb: VerbPause, ReleaseID: "release-shop-1.2.3"}},
		{"resume release-shop-1.2.3 db migrated", Command{Verb: VerbResume, ReleaseID: "release-shop-1.2.3", Reason: "db migrated"}},
		{
			"abort release-shop-1.2.3   errors  &gt; 5% &amp; rising",
			Command{Verb: VerbAbort, ReleaseID: "release-shop-1.2.3", Reason: "errors  > 5% & rising"},
		},
		{"rollback release-shop-1.2.3 p99 doubled", Command{Verb: VerbRollback, ReleaseID: "release-shop-1.2.3", Reason: "p99 doubled"}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCommand(tt.text)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseCommand_RefusesBadInputWithWhatToTypeInstead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text      string
		problem   string
		usageHint string
	}{
		{"deploy shop 1.2.3", `"deploy" is not a /release command`, "/release start <runbook> <version>"},
		{"start", "Say which runbook and which version", "/release start <runbook> <version> [component=version ...]"},
		{"start shop", "Say which runbook and which version", "/release start"},
		{"start shop api=1.2.3", "Give the release version before any component=version", "/release start"},
		{"start api=1.2.3 shop", "The runbook comes first", "/release start"},
		{"start shop 1.2.3 api", `"api" is not component=version`, "/release start"},
		{"start shop 1.2.3 api=", `"api=" is not component=version`, "/release start"},
		{"start shop 1.2.3 =1.2.3", `"=1.2.3" is not component=version`, "/release start"},
		{"start shop 1.2.3 api=1=2", `"api=1=2" is not component=version`, "/release start"},
		{"start shop 1.2.3 api=1.2.4 api=1.2.5", `Component "api" is given twice`, "/release start"},
		{"start shop <http://1.2.3|1.2.3>", "characters Slack formatted", "/release start"},
		{"start shop 1.2.3 api=`1.2.4`", "characters Slack formatted", "/release start"},
		{"list everything", "takes no arguments", "/release list"},
		{"status one two", "at most one release id", "/release status [release-id]"},
		{"pause", "Say which release to pause", "/release pause <release-id> [reason]"},
		{"resume", "Say which release to resume", "/release resume <release-id>"},
		{"abort", "Say which release to abort", "/release abort <release-id>"},
		{"rollback", "Say which release to rollback", "/release rollback <release-id>"},
		{"abort <@U123>", "characters Slack formatted", "/release abort"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCommand(tt.text)
			require.ErrorIs(t, err, ErrUsage)
			require.Equal(t, Command{}, got, "nothing is returned to act on")
			var ue *UsageError
			require.ErrorAs(t, err, &ue)
			require.Contains(t, ue.Problem, tt.problem)
			require.Contains(t, ue.Usage, tt.usageHint)
			require.Contains(t, err.Error(), "Usage: ")
		})
	}
}

func TestHelpText_ListsEveryVerb(t *testing.T) {
	t.Parallel()
	help := HelpText()
	for _, v := range []Verb{VerbStart, VerbStatus, VerbList, VerbPause, VerbResume, VerbAbort, VerbRollback, VerbHelp} {
		require.Contains(t, help, "`/release "+string(v), "help for %s", v)
	}
	// Every usage line in help parses back (with its placeholders filled in) as its verb.
	for _, u := range usage {
		line := strings.NewReplacer("<runbook>", "shop", "<version>", "1.2.3", "<release-id>", "r-1",
			"[component=version ...]", "api=1.2.4", "[release-id]", "r-1", "[reason]", "why not").Replace(u.line)
		cmd, err := ParseCommand(strings.TrimPrefix(line, CommandName+" "))
		require.NoError(t, err, line)
		require.Equal(t, u.verb, cmd.Verb, line)
	}
}
