package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/runbooks"
)

func newRunbookCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "runbook", Short: "Check, explain and describe runbook files"}
	cmd.AddCommand(newRunbookValidateCmd(), newRunbookExplainCmd(), newRunbookSchemaCmd())
	return cmd
}

// runbooksDir is the runbooks folder of the configuration (runbooksDir,
// TRAINYARD_RUNBOOKS_DIR): runbook commands need no server, database or tokens.
func runbooksDir(cmd *cobra.Command) (string, error) {
	path, _ := cmd.Flags().GetString("config")
	cfg, err := config.Load(path)
	if err != nil {
		return "", err
	}
	return cfg.RunbooksDir, nil
}

func newRunbookValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate [FILE or FOLDER...]",
		Short: "Check runbook files and print every problem with its line",
		Long: `Checks each runbook file named, and every *.yaml and *.yml file of each folder named (not
its subfolders), printing every problem as file:line: path: message. Without arguments it
checks the runbooks folder of the configuration (runbooksDir, default runbooks/examples).
Exits 1 when any file is invalid.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				dir, err := runbooksDir(cmd)
				if err != nil {
					return err
				}
				args = []string{dir}
			}
			v := &validation{out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr()}
			for _, arg := range args {
				v.check(arg)
			}
			if v.bad > 0 {
				return fmt.Errorf("%d of %d runbook files are invalid", v.bad, v.files)
			}
			if v.files == 0 {
				return fmt.Errorf("no runbook files (*.yaml, *.yml) in %s", strings.Join(args, ", "))
			}
			return nil
		},
	}
}

// validation counts the files checked and the invalid ones.
type validation struct {
	out, errOut io.Writer
	files, bad  int
}

// check validates a file, or every runbook file directly in a folder; runbook names must be
// unique within a folder, as in the catalog.
func (v *validation) check(arg string) {
	fi, err := os.Stat(arg)
	if err != nil || !fi.IsDir() {
		v.checkFile(arg, nil)
		return
	}
	entries, err := os.ReadDir(arg)
	if err != nil {
		v.files++
		v.bad++
		fmt.Fprintf(v.errOut, "%s: %v\n", arg, err)
		return
	}
	names := map[string]string{}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			v.checkFile(filepath.Join(arg, e.Name()), names)
		}
	}
}

// checkFile validates one file. names, when not nil, maps the runbook names seen in the same
// folder to their files.
func (v *validation) checkFile(file string, names map[string]string) {
	v.files++
	rb, err := runbooks.LoadFile(file)
	if err != nil {
		v.bad++
		printLoadError(v.errOut, file, err)
		return
	}
	if names != nil {
		if prev, dup := names[rb.Name]; dup {
			v.bad++
			fmt.Fprintf(v.errOut, "%s: runbook %q is also declared in %s; runbook names are unique in a folder\n", file, rb.Name, prev)
			return
		}
		names[rb.Name] = file
	}
	fmt.Fprintf(v.out, "%s: runbook %q is valid (%d stages, %d approval gates)\n", file, rb.Name, len(rb.Stages), len(rb.Approvals))
	if n := len(runbooks.Unsupported(rb)); n > 0 {
		fmt.Fprintf(v.out, "  %d %s not yet enforced by this version, which refuses to start its releases: see trainyard runbook explain %s\n",
			n, pluralWord(n, "part is", "parts are"), file)
	}
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// printLoadError prints each located problem as file:line: path: message, or the error.
func printLoadError(w io.Writer, file string, err error) {
	var inv *runbooks.InvalidError
	if errors.As(err, &inv) {
		for _, p := range inv.Problems {
			p.File = file
			fmt.Fprintln(w, p.String())
		}
		return
	}
	fmt.Fprintf(w, "%s: %v\n", file, err)
}

func newRunbookExplainCmd() *cobra.Command {
	var dir, format string
	cmd := &cobra.Command{
		Use:   "explain NAME|FILE",
		Short: "Print the plan a release of a runbook follows",
		Long: `Prints the resolved plan of a runbook: its scope, readiness gates, approvals in the order
they are met, stages in execution order (stages of one wave run at once) with their strategy
and targets, stabilization, and what rolls a release back. Parts this version of Trainyard
does not enforce yet are marked "not yet enforced".

NAME is a runbook of the runbooks folder (--dir, default the configuration's runbooksDir);
a path to a file (or anything ending in .yaml or .yml) is read directly.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return fmt.Errorf("--format %q: use text or json", format)
			}
			rb, err := loadRunbookArg(cmd, args[0], dir)
			if err != nil {
				return err
			}
			plan := runbooks.Explain(rb)
			plan.NotYetEnforced = runbooks.Unsupported(rb)
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(plan)
			}
			return plan.Text(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "runbooks folder to look NAME up in (default: runbooksDir of the configuration)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

// loadRunbookArg reads a runbook file, or looks a name up in the runbooks folder. Problems of
// an invalid file are printed with their lines.
func loadRunbookArg(cmd *cobra.Command, arg, dir string) (runbooks.Runbook, error) {
	isFile := strings.ContainsRune(arg, filepath.Separator) || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml")
	if !isFile {
		if fi, err := os.Stat(arg); err == nil && !fi.IsDir() {
			isFile = true
		}
	}
	if isFile {
		rb, err := runbooks.LoadFile(arg)
		if err != nil {
			printLoadError(cmd.ErrOrStderr(), arg, err)
			return rb, fmt.Errorf("runbook %s is invalid", arg)
		}
		return rb, nil
	}
	if dir == "" {
		var err error
		if dir, err = runbooksDir(cmd); err != nil {
			return runbooks.Runbook{}, err
		}
	}
	rb, err := runbooks.Catalog{Dir: dir}.Get(arg)
	if errors.Is(err, runbooks.ErrNotFound) {
		return rb, fmt.Errorf("no runbook named %q in %s (runbooks there: %s)", arg, dir, catalogNames(dir))
	}
	return rb, err
}

// catalogNames lists the valid runbooks of dir for a "not found" message.
func catalogNames(dir string) string {
	all, _ := runbooks.Catalog{Dir: dir}.All()
	names := make([]string, 0, len(all))
	for _, rb := range all {
		names = append(names, rb.Name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none valid"
	}
	return strings.Join(names, ", ")
}

func newRunbookSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of runbook files, for editors",
		Long: `Prints a JSON Schema (draft 2020-12) of the runbook language, generated from the Go types
that runbooks decode into. Point an editor at it to complete and check runbook files, e.g.
with the YAML language server: # yaml-language-server: $schema=runbook.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			schema, err := runbooks.JSONSchema()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(append(schema, '\n'))
			return err
		},
	}
}
