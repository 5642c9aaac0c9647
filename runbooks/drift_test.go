package runbooks

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidate_DriftCommandAndAction(t *testing.T) {
	t.Parallel()
	target := func(fields string) string {
		return "stages:\n  - name: s\n    targets:\n      - {name: t, " + fields + "}\n"
	}
	cmd := "kind: command, site: a, deploy: x, rollback: y, "
	runValidateCases(t, []validateCase{
		{name: "command with drift and action", yaml: target(cmd + "drift: ./check.sh, onDrift: resync")},
		{name: "command with drift only", yaml: target(cmd + "drift: ./check.sh")},
		{name: "argocd action", yaml: target("kind: argocd, argocd: {app: web}, onDrift: fail")},
		{name: "unknown action", yaml: target(cmd + "drift: ./check.sh, onDrift: ignore"), path: "stages[0].targets[0].onDrift", msg: `unknown drift action "ignore": use one of warn, fail, resync`},
		{name: "misspelt action", yaml: target(cmd + "drift: ./check.sh, onDrift: resinc"), path: "stages[0].targets[0].onDrift", msg: `did you mean "resync"?`},
		{name: "action without drift command", yaml: target(cmd + "onDrift: fail"), path: "stages[0].targets[0].onDrift", msg: "add drift:"},
		{name: "drift command on argocd", yaml: target("kind: argocd, argocd: {app: web}, drift: ./check.sh"), path: "stages[0].targets[0].drift", msg: "only for command targets"},
		{name: "action on a flag", yaml: target("kind: flag, flag: {flag: f, environment: e}, onDrift: warn"), path: "stages[0].targets[0].onDrift", msg: "only for command and argocd targets"},
	})
}

func TestDriftActionOrDefault_WarnsUnlessTold(t *testing.T) {
	t.Parallel()
	require.Equal(t, DriftWarn, Target{}.DriftActionOrDefault())
	require.Equal(t, DriftResync, Target{OnDrift: DriftResync}.DriftActionOrDefault())
}
