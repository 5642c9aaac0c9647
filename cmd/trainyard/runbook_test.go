package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
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

func TestRunbookValidate_NeedsAFile(t *testing.T) {
	t.Parallel()
	_, _, err := runCLI(t, "runbook", "validate")
	require.ErrorContains(t, err, "requires at least 1 arg")
}
