package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/runbooks"
)

// runCLI runs the trainyard command line with args and returns what it printed.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// brokenRunbook names an unknown target kind on line brokenKindLine.
const (
	brokenRunbook = `name: broken
description: a target kind this version does not know
stages:
  - name: staging
    targets:
      - name: web
        kind: helm
        site: local
        deploy: echo deploy
        rollback: echo rollback
`
	brokenKindLine = 7
)

func writeRunbook(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

func TestRunbookValidate_ExampleIsValid(t *testing.T) {
	t.Parallel()
	const file = "../../runbooks/examples/hello.yaml"
	stdout, stderr, err := runCLI(t, "runbook", "validate", file)
	require.NoError(t, err)
	require.Empty(t, stderr)
	require.Equal(t, file+": runbook \"hello\" is valid (2 stages, 1 approval gates)\n", stdout)
}

func TestRunbookValidate_UnknownTargetKindPrintsFileAndLine(t *testing.T) {
	t.Parallel()
	file := writeRunbook(t, "broken.yaml", brokenRunbook)

	stdout, stderr, err := runCLI(t, "runbook", "validate", file)
	require.EqualError(t, err, "1 of 1 runbook files are invalid")
	require.Empty(t, stdout)
	require.Contains(t, stderr, fmt.Sprintf("%s:%d:", file, brokenKindLine))
	require.Contains(t, stderr, `stages[0].targets[0].kind: unknown target kind "helm"`)
}

func TestRunbookValidate_ChecksEveryFileAndCountsTheInvalid(t *testing.T) {
	t.Parallel()
	good := "../../runbooks/examples/hello.yaml"
	broken := writeRunbook(t, "broken.yaml", brokenRunbook)
	missing := filepath.Join(t.TempDir(), "missing.yaml")

	stdout, stderr, err := runCLI(t, "runbook", "validate", broken, good, missing)
	require.EqualError(t, err, "2 of 3 runbook files are invalid")
	require.Contains(t, stdout, good+`: runbook "hello" is valid`)
	require.Contains(t, stderr, fmt.Sprintf("%s:%d:", broken, brokenKindLine))
	require.Contains(t, stderr, missing+": read runbook:")
}

const helloFile = "../../runbooks/examples/hello.yaml"

// runbookFolder makes a folder holding the files given (name to content).
func runbookFolder(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	}
	return dir
}

func readHello(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(helloFile)
	require.NoError(t, err)
	return string(data)
}

func TestRunbookValidate_ChecksEveryRunbookFileOfAFolderButNotSubfolders(t *testing.T) {
	t.Parallel()
	dir := runbookFolder(t, map[string]string{
		"hello.yaml":        readHello(t),
		"broken.yml":        brokenRunbook,
		"notes.txt":         "not a runbook",
		"base/partial.yaml": "description: a base runbook, not checked on its own\n",
	})

	stdout, stderr, err := runCLI(t, "runbook", "validate", dir)
	require.EqualError(t, err, "1 of 2 runbook files are invalid")
	require.Equal(t, filepath.Join(dir, "hello.yaml")+": runbook \"hello\" is valid (2 stages, 1 approval gates)\n", stdout)
	require.Contains(t, stderr, fmt.Sprintf("%s:%d:", filepath.Join(dir, "broken.yml"), brokenKindLine))
	require.NotContains(t, stderr, "partial.yaml")
}

func TestRunbookValidate_RefusesTwoRunbooksOfOneNameInAFolder(t *testing.T) {
	t.Parallel()
	dir := runbookFolder(t, map[string]string{"a.yaml": readHello(t), "b.yaml": readHello(t)})

	_, stderr, err := runCLI(t, "runbook", "validate", dir)
	require.EqualError(t, err, "1 of 2 runbook files are invalid")
	require.Contains(t, stderr, filepath.Join(dir, "b.yaml")+`: runbook "hello" is also declared in `+filepath.Join(dir, "a.yaml"))
}

func TestRunbookValidate_DefaultsToTheConfiguredRunbooksFolder(t *testing.T) {
	t.Parallel()
	dir := runbookFolder(t, map[string]string{"hello.yaml": readHello(t)})
	cfg := writeRunbook(t, "config.yaml", "runbooksDir: "+dir+"\n")

	stdout, stderr, err := runCLI(t, "--config", cfg, "runbook", "validate")
	require.NoError(t, err)
	require.Empty(t, stderr)
	require.Contains(t, stdout, filepath.Join(dir, "hello.yaml")+`: runbook "hello" is valid`)

	empty := runbookFolder(t, nil)
	_, _, err = runCLI(t, "runbook", "validate", empty)
	require.ErrorContains(t, err, "no runbook files (*.yaml, *.yml) in "+empty)
}

// blueGreenFlag is valid but cannot run: a flag has no second side to switch to. Its
// production stage also requires a capability staging lacks (environment parity).
const blueGreenFlag = `name: parity
rollbackAuthority: [release-manager]
approvals:
  - {name: production-signoff, before: production, roles: [release-manager]}
stages:
  - name: staging
    environment: staging
    targets:
      - {name: stg, kind: command, site: local, deploy: "true", rollback: "true"}
  - name: production
    environment: production
    requires: [hsm]
    strategy: {type: blueGreen, blueGreen: {rollbackWindow: 1h}}
    targets:
      - {name: fw, kind: flag, flag: {flag: new-ui, environment: production}}
`

func TestRunbookValidate_SaysWhenARunbookUsesWhatIsNotYetEnforced(t *testing.T) {
	t.Parallel()
	file := writeRunbook(t, "parity.yaml", blueGreenFlag)

	stdout, _, err := runCLI(t, "runbook", "validate", file)
	require.NoError(t, err, "valid: the language has it, this version does not run it yet")
	require.Contains(t, stdout, "1 part is not yet enforced by this version, which refuses to start its releases: see trainyard runbook explain "+file)
}

func TestRunbookExplain_HelloShowsStagesAndTheApprovalWithItsRoles(t *testing.T) {
	t.Parallel()
	stdout, stderr, err := runCLI(t, "runbook", "explain", "hello", "--dir", "../../runbooks/examples")
	require.NoError(t, err)
	require.Empty(t, stderr)
	for _, want := range []string{
		"Runbook            hello\n",
		"  Wave 1\n    staging  environment staging\n",
		"      targets      staging-web  command  site local",
		"  Wave 2\n    production  environment production; after staging\n",
		"    1. production-signoff, before stage production\n      approvers    1 person with role release-manager\n",
		"      timeout      24h, then the release is rejected and rolled back\n",
		"  Window           20s",
	} {
		require.Contains(t, stdout, want, "output:\n%s", stdout)
	}
	require.NotContains(t, stdout, "not yet enforced", "hello uses only what this version enforces")
}

func TestRunbookExplain_JSONDecodesIntoAPlanAndNamesWhatIsNotYetEnforced(t *testing.T) {
	t.Parallel()
	file := writeRunbook(t, "bluegreen.yaml", blueGreenFlag)

	stdout, _, err := runCLI(t, "runbook", "explain", file, "--format", "json")
	require.NoError(t, err)
	var plan runbooks.Plan
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&plan))
	require.Equal(t, "parity", plan.Runbook)
	require.Len(t, plan.Waves, 2)
	require.Equal(t, runbooks.PlanStrategy{Type: "blueGreen", RollbackWindow: runbooks.Duration(time.Hour)}, plan.Waves[1].Stages[0].Strategy)
	require.Equal(t, []string{"release-manager"}, plan.Governance.Approvals[0].Roles)
	require.Len(t, plan.NotYetEnforced, 1)
	require.True(t, strings.HasPrefix(plan.NotYetEnforced[0], "stages[1].targets[0]: "), plan.NotYetEnforced[0])
	require.Equal(t, []string{"hsm"}, plan.Waves[1].Stages[0].NotExercisedBefore)

	text, _, err := runCLI(t, "runbook", "explain", file)
	require.NoError(t, err)
	require.Contains(t, text, "the old side is kept 1h to switch back\n")
	require.Contains(t, text, "requires hsm\n")
	require.Contains(t, text, "not exercised before this stage: hsm")
	require.Contains(t, text, "\nNOT YET ENFORCED ")
}

func TestRunbookExplain_UnknownNameListsTheRunbooks(t *testing.T) {
	t.Parallel()
	dir := runbookFolder(t, map[string]string{"hello.yaml": readHello(t)})
	_, _, err := runCLI(t, "runbook", "explain", "helo", "--dir", dir)
	require.EqualError(t, err, `no runbook named "helo" in `+dir+` (runbooks there: hello)`)
}

func TestRunbookExplain_InvalidFilePrintsItsProblems(t *testing.T) {
	t.Parallel()
	file := writeRunbook(t, "broken.yaml", brokenRunbook)
	_, stderr, err := runCLI(t, "runbook", "explain", file)
	require.EqualError(t, err, "runbook "+file+" is invalid")
	require.Contains(t, stderr, fmt.Sprintf("%s:%d:", file, brokenKindLine))
}

func TestRunbookExplain_RefusesAnUnknownFormat(t *testing.T) {
	t.Parallel()
	_, _, err := runCLI(t, "runbook", "explain", helloFile, "--format", "yaml")
	require.EqualError(t, err, `--format "yaml": use text or json`)
}

func TestRunbookSchema_PrintsTheJSONSchema(t *testing.T) {
	t.Parallel()
	stdout, _, err := runCLI(t, "runbook", "schema")
	require.NoError(t, err)
	var schema map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &schema))
	require.Equal(t, "https://json-schema.org/draft/2020-12/schema", schema["$schema"])
	require.Contains(t, schema["properties"], "stages")
}
