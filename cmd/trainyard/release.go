package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trainyard/trainyard/apiclient"
	"github.com/trainyard/trainyard/workflows"
)

const defaultAPIURL = "http://127.0.0.1:8080"

// releaseCLI holds the flags of every command that calls the HTTP API: the release
// subcommands and audit export.
type releaseCLI struct {
	api   string
	token string
}

// addAPIFlags adds --api and --token to cmd and its subcommands.
func addAPIFlags(cmd *cobra.Command) *releaseCLI {
	r := &releaseCLI{}
	api := os.Getenv("TRAINYARD_API_URL")
	if api == "" {
		api = defaultAPIURL
	}
	cmd.PersistentFlags().StringVar(&r.api, "api", api, "Trainyard API base URL (env TRAINYARD_API_URL)")
	// The token's default is read when a command runs, not shown here: a flag default is
	// printed by --help, and a token must not be.
	cmd.PersistentFlags().StringVar(&r.token, "token", "", "API bearer token (default: env TRAINYARD_TOKEN)")
	return r
}

func (r *releaseCLI) client() (*apiclient.Client, error) {
	token := r.token
	if token == "" {
		token = os.Getenv("TRAINYARD_TOKEN")
	}
	if token == "" {
		return nil, errors.New("set TRAINYARD_TOKEN or --token (in dev: dev-token to start, dev-approver-token to approve)")
	}
	return apiclient.New(r.api, token, nil), nil
}

func newReleaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Start, follow, approve and abort releases through the HTTP API",
	}
	r := addAPIFlags(cmd)
	cmd.AddCommand(
		newReleaseStartCmd(r),
		newReleaseListCmd(r),
		newReleaseStatusCmd(r),
		newReleaseApproveCmd(r),
		newReleaseRejectCmd(r),
		newReleaseAbortCmd(r),
		newReleasePauseCmd(r), newReleaseResumeCmd(r),
		newReleaseWatchCmd(r),
	)
	return cmd
}

func newReleaseStartCmd(r *releaseCLI) *cobra.Command {
	var components, authors []string
	var commit, key string
	cmd := &cobra.Command{
		Use:   "start RUNBOOK VERSION",
		Short: "Start a release of a runbook at a version (starting it again finds the same one)",
		Example: `  trainyard release start hello 1.2.3 --component api=1.2.3@ghcr.io/acme/api@sha256:ab12 --commit 9f2c1e0 --author alice
  trainyard release start hello 1.2.3 --idempotency-key ci-build-4711`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apiclient.StartRequest{Runbook: args[0], Version: args[1]}
			for _, c := range components {
				comp, err := parseComponent(c)
				if err != nil {
					return err
				}
				req.Components = append(req.Components, comp)
			}
			if commit != "" || len(authors) > 0 {
				req.Change = &workflows.Change{Commit: commit, Authors: authors}
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			resp, created, err := c.StartRelease(cmd.Context(), req, key)
			if err != nil {
				return explain(err)
			}
			out := cmd.OutOrStdout()
			phase := resp.Phase
			if phase == "" {
				phase = "unknown"
			}
			if created {
				fmt.Fprintf(out, "Started release %s (phase %s)\n", resp.ID, phase)
			} else {
				fmt.Fprintf(out, "Release %s already exists (phase %s); nothing new was started\n", resp.ID, phase)
			}
			var links table
			links.row("  Status", resp.StatusURL)
			links.row("  Temporal UI", resp.TemporalUIURL)
			links.write(out)
			fmt.Fprintf(out, "Follow it with: trainyard release watch %s\n", resp.ID)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&components, "component", nil, "a component it ships, as name=version[@artifact] (repeatable)")
	cmd.Flags().StringVar(&commit, "commit", "", "the commit being released")
	cmd.Flags().StringArrayVar(&authors, "author", nil, "an author of the change (repeatable)")
	cmd.Flags().StringVar(&key, "idempotency-key", "", "name the release by this key instead of runbook and version (for example a CI build id)")
	return cmd
}

// parseComponent reads name=version[@artifact]. The artifact is everything after the first
// '@', so a digest reference such as registry/api@sha256:... survives whole.
func parseComponent(s string) (workflows.Component, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" || rest == "" {
		return workflows.Component{}, fmt.Errorf("--component %q: write it as name=version or name=version@artifact", s)
	}
	version, artifact, _ := strings.Cut(rest, "@")
	if version == "" {
		return workflows.Component{}, fmt.Errorf("--component %q: the version is empty; write it as name=version@artifact", s)
	}
	return workflows.Component{Name: name, Version: version, Artifact: artifact}, nil
}

func newReleaseListCmd(r *releaseCLI) *cobra.Command {
	var opts apiclient.ListOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List releases",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			list, err := c.ListReleases(cmd.Context(), opts)
			if err != nil {
				return explain(err)
			}
			out := cmd.OutOrStdout()
			if len(list) == 0 {
				fmt.Fprintln(out, "No releases match.")
				return nil
			}
			var t table
			t.row("ID", "PHASE", "RUNBOOK", "VERSION", "REQUESTER", "STARTED")
			for _, rel := range list {
				t.row(rel.ID, rel.Phase, rel.Runbook, rel.Version, rel.Requester, formatTime(rel.StartedAt))
			}
			t.write(out)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Runbook, "runbook", "", "only releases of this runbook")
	cmd.Flags().StringVar(&opts.Phase, "phase", "", "only releases in this phase (pending, awaiting_approval, deploying, stabilizing, rolling_back, succeeded, rolled_back, rejected, aborted, failed)")
	cmd.Flags().StringVar(&opts.Environment, "environment", "", "only releases in this environment")
	cmd.Flags().IntVar(&opts.Limit, "limit", 0, "at most this many releases")
	return cmd
}

func newReleaseStatusCmd(r *releaseCLI) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a release: phase, stages and targets, approvals, failure, recent events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context(), args[0])
			if err != nil {
				return explain(err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			renderStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func newReleaseApproveCmd(r *releaseCLI) *cobra.Command {
	var gate, comment string
	var ack bool
	cmd := &cobra.Command{
		Use:   "approve ID",
		Short: "Approve an approval gate of a release (the one waiting, unless --gate names it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return decide(cmd, r, args[0], apiclient.DecisionRequest{Decision: apiclient.DecisionApprove, Gate: gate, Comment: comment, AcknowledgePreMortem: ack})
		},
	}
	cmd.Flags().StringVar(&gate, "gate", "", "the approval gate (default: the one gate waiting)")
	cmd.Flags().StringVar(&comment, "comment", "", "why you approve")
	cmd.Flags().BoolVar(&ack, "acknowledge-pre-mortem", false, "acknowledge the release's expected failure modes (required when its runbook lists them; see release status)")
	return cmd
}

func newReleaseRejectCmd(r *releaseCLI) *cobra.Command {
	var gate, reason string
	cmd := &cobra.Command{
		Use:   "reject ID --reason REASON",
		Short: "Reject an approval gate of a release, which stops it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return decide(cmd, r, args[0], apiclient.DecisionRequest{Decision: apiclient.DecisionReject, Gate: gate, Comment: reason})
		},
	}
	cmd.Flags().StringVar(&gate, "gate", "", "the approval gate (default: the one gate waiting)")
	cmd.Flags().StringVar(&reason, "reason", "", "why you reject (required)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func decide(cmd *cobra.Command, r *releaseCLI, id string, req apiclient.DecisionRequest) error {
	c, err := r.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if req.Gate == "" {
		st, err := c.Status(ctx, id)
		if err != nil {
			return explain(err)
		}
		if req.Gate, err = waitingGate(st); err != nil {
			return err
		}
	}
	res, err := c.Decide(ctx, id, req)
	if err != nil {
		return explain(err)
	}
	verb := "Approved"
	if req.Decision == apiclient.DecisionReject {
		verb = "Rejected"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s gate %s of %s: gate is %s (%d of %d approvals)\n", verb, res.Gate, id, res.State, res.Approvals, res.Required)
	return nil
}

// waitingGate is the gate a decision without --gate is meant for: the only one waiting.
func waitingGate(st workflows.ReleaseStatus) (string, error) {
	var waiting, all []string
	for _, a := range st.Approvals {
		all = append(all, a.Gate+" ("+a.State+")")
		if a.State == workflows.GateWaiting {
			waiting = append(waiting, a.Gate)
		}
	}
	switch {
	case len(waiting) == 1:
		return waiting[0], nil
	case len(waiting) > 1:
		return "", fmt.Errorf("release %s has several gates waiting (%s); name one with --gate", st.ID, strings.Join(waiting, ", "))
	case len(all) == 0:
		return "", fmt.Errorf("release %s has no approval gates (phase %s)", st.ID, st.Phase)
	}
	return "", fmt.Errorf("no approval gate of release %s is waiting for a decision (gates: %s; phase %s)", st.ID, strings.Join(all, ", "), st.Phase)
}

func newReleaseAbortCmd(r *releaseCLI) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "abort ID --reason REASON",
		Short: "Stop a release and roll back what it deployed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			res, err := c.Abort(cmd.Context(), args[0], reason)
			if err != nil {
				return explain(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Aborting %s: phase is now %s\nFollow the rollback with: trainyard release watch %s\n", args[0], res.Phase, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the release must stop (required)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newReleaseWatchCmd(r *releaseCLI) *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a release until it ends: exit 0 when it succeeds, 1 otherwise",
		Long: `Polls the release and prints each new timeline event and phase change, and a progress bar
for each target whenever it moves (canary weight, devices flashed, blue-green side). Exits 0 when the
release succeeds, and 1 (printing the failure) when it is rolled back, rejected, aborted or
failed. Stopping the watch (Ctrl-C) does not stop the release.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return fmt.Errorf("--interval must be positive, not %s", interval)
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			return watchRelease(cmd.Context(), c, args[0], interval, cmd.OutOrStdout(), cmd.ErrOrStderr(), time.Now)
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often to poll")
	return cmd
}

// maxWatchErrors is how many polls in a row may fail (server restarting, network blip)
// before the watch gives up.
const maxWatchErrors = 30

// watchRelease polls until the release ends. It returns nil when the release succeeded and
// an error saying how it ended otherwise.
func watchRelease(ctx context.Context, c *apiclient.Client, id string, interval time.Duration, out, errOut io.Writer, now func() time.Time) error {
	var (
		phase     workflows.Phase
		seenUntil time.Time
		seenAt    = map[string]bool{} // messages already printed at seenUntil
		failures  int
		bars      = map[string]string{} // the progress bar last printed per target
	)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		st, err := c.Status(ctx, id)
		switch {
		case err == nil:
			failures = 0
		case isClientError(err):
			return explain(err)
		default:
			failures++
			if failures >= maxWatchErrors {
				return fmt.Errorf("gave up after %d failed polls: %w", failures, explain(err))
			}
			fmt.Fprintf(errOut, "warning: %v (retrying)\n", explain(err))
		}
		if err == nil {
			// Events are printed by time, not by position, so a timeline the workflow trims
			// does not replay or skip lines.
			for _, ev := range st.Timeline {
				switch {
				case ev.At.Before(seenUntil):
					continue
				case ev.At.Equal(seenUntil) && seenAt[ev.Message]:
					continue
				case ev.At.After(seenUntil):
					seenUntil = ev.At
					clear(seenAt)
				}
				seenAt[ev.Message] = true
				fmt.Fprintf(out, "%s  %s\n", formatClock(ev.At), ev.Message)
			}
			if st.Phase != phase {
				if phase == "" {
					fmt.Fprintf(out, "%s  phase %s\n", formatClock(now()), st.Phase)
				} else {
					fmt.Fprintf(out, "%s  phase %s -> %s\n", formatClock(now()), phase, st.Phase)
				}
				phase = st.Phase
			}
			printProgress(out, st, bars, now())
			if st.Phase.Terminal() {
				return ended(st)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// ended says how a finished release ended: nil for success, an error otherwise.
func ended(st workflows.ReleaseStatus) error {
	if st.Phase == workflows.PhaseSucceeded {
		return nil
	}
	if st.Failure != "" {
		return fmt.Errorf("release %s ended %s: %s", st.ID, st.Phase, st.Failure)
	}
	return fmt.Errorf("release %s ended %s", st.ID, st.Phase)
}

// isClientError reports a refusal that polling again will not change (4xx).
func isClientError(err error) bool {
	p, ok := apiclient.AsProblem(err)
	return ok && p.Status >= 400 && p.Status < 500
}

// problemError prints an API problem with its located problems, one per line.
type problemError struct {
	p *apiclient.Problem
}

func (e *problemError) Error() string {
	var b strings.Builder
	b.WriteString(e.p.Error())
	for _, pr := range e.p.Problems {
		b.WriteString("\n  ")
		b.WriteString(pr.String())
	}
	return b.String()
}

func (e *problemError) Unwrap() error { return e.p }

// explain turns an API problem into an error that prints everything the server said.
func explain(err error) error {
	if p, ok := apiclient.AsProblem(err); ok {
		return &problemError{p: p}
	}
	return err
}

// table aligns rows into columns. tabwriter aligns a column only over consecutive lines that
// all have that cell, so short rows (a stage line without site or attempts) are padded with
// empty cells, and the spaces this leaves at line ends are trimmed.
type table struct {
	rows [][]string
}

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) {
	width := 0
	for _, r := range t.rows {
		width = max(width, len(r))
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+strings.Repeat("\t", width-len(r)+1))
	}
	_ = tw.Flush()
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		if line == "" {
			continue
		}
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

// Times are shown as the server sent them (UTC), so every reader of a shared terminal log
// sees the same clock.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("2006-01-02 15:04:05Z07:00")
}

func formatClock(t time.Time) string { return t.Format("15:04:05") }

// timelineTail is how many recent events a status shows.
const timelineTail = 10

// outputTail is how many lines of a failed target's output a status shows.
const outputTail = 5

// renderStatus writes a release status for a person: the header, one row per stage and
// target, the approval gates and decisions, the failure, and the last timeline events.
func renderStatus(w io.Writer, s workflows.ReleaseStatus) {
	var head table
	row := func(k, v string) { head.row(k, v) }
	row("Release", s.ID)
	runbook := s.Runbook + " " + s.Version
	if s.PreviousVersion != "" {
		runbook += " (previous " + s.PreviousVersion + ")"
	}
	row("Runbook", runbook)
	if s.Requester.Name != "" {
		row("Requester", s.Requester.Name)
	}
	phase := string(s.Phase)
	if s.CurrentStage != "" {
		phase += ", stage " + s.CurrentStage
	}
	if s.Environment != "" {
		phase += " (" + s.Environment + ")"
	}
	row("Phase", phase)
	row("Started", formatTime(s.StartedAt))
	if s.StabilizationEndsAt != nil && s.EndedAt == nil {
		row("Stable at", formatTime(*s.StabilizationEndsAt))
	}
	if s.EndedAt != nil {
		row("Ended", formatTime(*s.EndedAt))
	}
	if len(s.Components) > 0 {
		comps := make([]string, len(s.Components))
		for i, c := range s.Components {
			comps[i] = strings.TrimSpace(c.Name + " " + c.Version)
			if c.Artifact != "" {
				comps[i] += " (" + c.Artifact + ")"
			}
		}
		row("Components", strings.Join(comps, ", "))
	}
	if s.Risk != nil {
		risk := fmt.Sprintf("%d (%s)", s.Risk.Score, s.Risk.Level)
		var parts []string
		for _, f := range s.Risk.Factors {
			if f.Points > 0 {
				parts = append(parts, fmt.Sprintf("%s +%.1f: %s", f.Name, f.Points, f.Why))
			}
		}
		if len(parts) > 0 {
			risk += "; " + strings.Join(parts, "; ")
		}
		row("Risk", risk)
	}
	if s.PausedBy != "" {
		row("Paused by", s.PausedBy+": "+s.PauseReason)
	}
	if s.FreezeReason != "" {
		row("Frozen", s.FreezeReason)
	}
	for _, g := range s.Gates {
		line := g.State
		if g.Summary != "" {
			line += ": " + g.Summary
		}
		if g.Waiver != "" {
			line += " (waiver " + g.Waiver + ")"
		}
		row("Gate "+g.Name, line)
	}
	for i, fm := range s.PreMortem {
		row(fmt.Sprintf("Pre-mortem %d", i+1), fm.Failure+" -> "+fm.Mitigation)
	}
	if s.Failure != "" {
		row("Failure", s.Failure)
	}
	head.write(w)

	if len(s.Stages) > 0 {
		fmt.Fprintln(w)
		var stages table
		stages.row("STAGE / TARGET", "SITE", "STATE", "ATTEMPTS", "ERROR")
		for _, st := range s.Stages {
			name := st.Name
			if st.Environment != "" {
				name += " (" + st.Environment + ")"
			}
			stages.row(name, "", st.State)
			for _, t := range st.Targets {
				attempts := ""
				if t.Attempts > 0 {
					attempts = fmt.Sprint(t.Attempts)
				}
				stages.row("  "+t.Name, dash(t.Site), t.State, attempts, firstLine(t.Error))
			}
		}
		stages.write(w)
		for _, st := range s.Stages {
			for _, t := range st.Targets {
				if (t.State == workflows.StateFailed || t.State == workflows.StateRollbackErr) && t.Output != "" {
					fmt.Fprintf(w, "\nOutput of %s (last lines):\n", t.Name)
					for _, line := range lastLines(t.Output, outputTail) {
						fmt.Fprintf(w, "  | %s\n", line)
					}
				}
			}
		}
	}

	if len(s.Approvals) > 0 {
		fmt.Fprintln(w)
		var gates table
		gates.row("APPROVAL", "BEFORE", "STATE", "APPROVED", "ROLES", "DEADLINE")
		for _, a := range s.Approvals {
			approved := 0
			for _, d := range a.Decisions {
				if d.Decision == "approve" || d.Decision == workflows.GateApproved {
					approved++
				}
			}
			deadline := "-"
			if a.Deadline != nil && (a.State == workflows.GateWaiting || a.State == workflows.GatePending) {
				deadline = formatTime(*a.Deadline)
			}
			gates.row(a.Gate, a.Before, a.State, fmt.Sprintf("%d/%d", approved, a.Required), strings.Join(a.Roles, ","), deadline)
		}
		gates.write(w)
		var decisions []string
		for _, a := range s.Approvals {
			for _, d := range a.Decisions {
				line := fmt.Sprintf("  %s: %s by %s at %s", a.Gate, d.Decision, d.Actor, formatTime(d.At))
				if d.Comment != "" {
					line += fmt.Sprintf(": %q", d.Comment)
				}
				decisions = append(decisions, line)
			}
		}
		if len(decisions) > 0 {
			fmt.Fprintln(w, "Decisions:")
			for _, d := range decisions {
				fmt.Fprintln(w, d)
			}
		}
	}

	if len(s.Timeline) > 0 {
		events := s.Timeline
		title := "Timeline:"
		if len(events) > timelineTail {
			events = events[len(events)-timelineTail:]
			title = fmt.Sprintf("Timeline (last %d of %d events):", timelineTail, len(s.Timeline))
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, title)
		for _, ev := range events {
			fmt.Fprintf(w, "  %s  %s\n", formatTime(ev.At), ev.Message)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	const maxLen = 80
	if len(s) > maxLen {
		s = s[:maxLen-3] + "..."
	}
	return s
}

func lastLines(s string, n int) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
