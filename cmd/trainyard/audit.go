package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trainyard/trainyard/apiclient"

	"github.com/trainyard/trainyard/store"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify the audit trail's hash chain, and export the trail",
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditExportCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit trail's hash chain in the database: exit 0 when intact, 1 when broken",
		Long: `Reads every audit event from the database (DATABASE_URL, or databaseURL in the config file),
recomputes each row's hash and checks that it links to the row before. Prints how many rows
were checked, how many were written before the chain began (not covered by it), the head of
the chain (keep it somewhere the database's administrators cannot write, to compare later),
and the first row where the chain breaks, if any. Exits 1 when the chain is broken.

It needs read access to the database, not an API token: it is for auditors and operators.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var report store.VerifyReport
			err := withStore(cmd, func(ctx context.Context, st *store.Store) error {
				var err error
				report, err = st.VerifyAudit(ctx)
				return err
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(report); err != nil {
					return err
				}
			} else {
				renderVerifyReport(out, report)
			}
			if !report.OK() {
				return fmt.Errorf("the audit trail is broken: %d of %d rows fail, the first at row %d", report.Broken, report.Checked, report.FirstBroken.ID)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func renderVerifyReport(w io.Writer, r store.VerifyReport) {
	var t table
	if r.Checked == 0 {
		t.row("Chain", "empty: no row has a hash yet")
	} else {
		t.row("Chain", fmt.Sprintf("checked %d rows, ids %d to %d", r.Checked, r.FirstID, r.LastID))
		t.row("Head", fmt.Sprintf("id %d, hash %s", r.LastID, r.LastHash))
	}
	if r.BeforeChain > 0 {
		t.row("Before it", fmt.Sprintf("%d rows up to id %d, written before the chain began: not covered by it", r.BeforeChain, r.LastBeforeChain))
	}
	if r.OK() {
		t.row("Result", "intact")
	} else {
		t.row("Result", fmt.Sprintf("BROKEN: %d of %d rows fail", r.Broken, r.Checked))
		t.row("First break", r.FirstBroken.String())
	}
	t.write(w)
}

// auditFormats are the formats audit export writes.
var auditFormats = []string{"csv", "json"}

func newAuditExportCmd() *cobra.Command {
	var (
		since, until, format string
		opts                 apiclient.AuditOptions
		r                    *releaseCLI
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the audit events that match to stdout, as CSV or JSON lines, through the HTTP API",
		Long: `Reads every audit event that matches the filters through the HTTP API, page by page, oldest
first, and writes them to stdout: CSV with a header row (roles separated by spaces, details as
JSON), or one JSON object per line. Each event carries its hash in the audit chain.

--since and --until take an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02, UTC), or
a duration back from now (90m, 24h, 7d). --since is inclusive, --until exclusive.`,
		Example: `  trainyard audit export --release release-shop-1.4.0 > release-shop-1.4.0-audit.csv
  trainyard audit export --since 7d --action release.approve --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var err error
			if opts.Since, err = parseTimeFlag("since", since, now); err != nil {
				return err
			}
			if opts.Until, err = parseTimeFlag("until", until, now); err != nil {
				return err
			}
			if !opts.Since.IsZero() && !opts.Until.IsZero() && !opts.Until.After(opts.Since) {
				return fmt.Errorf("--until (%s) must be after --since (%s)", opts.Until.Format(time.RFC3339), opts.Since.Format(time.RFC3339))
			}
			w, err := newAuditWriter(cmd.OutOrStdout(), format)
			if err != nil {
				return err
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			n := 0
			err = c.AuditAll(cmd.Context(), opts, func(ev apiclient.AuditEvent) error {
				n++
				return w.write(ev)
			})
			if cerr := w.close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("export stopped after %d events: %w", n, explain(err))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Exported %d audit events.\n", n)
			return nil
		},
	}
	r = addAPIFlags(cmd)
	cmd.Flags().StringVar(&since, "since", "", "only events at or after this time (RFC 3339, date, or duration back from now)")
	cmd.Flags().StringVar(&until, "until", "", "only events before this time (RFC 3339, date, or duration back from now)")
	cmd.Flags().StringVar(&opts.Release, "release", "", "only events of this release id")
	cmd.Flags().StringVar(&opts.Actor, "actor", "", "only events by this actor")
	cmd.Flags().StringVar(&opts.Action, "action", "", "only events of this action (release.start, release.approve, release.reject, release.abort, ...)")
	cmd.Flags().StringVar(&format, "format", "csv", "output format: "+strings.Join(auditFormats, " or "))
	return cmd
}

// parseTimeFlag reads --since or --until: an RFC 3339 time, a date (midnight UTC), or a
// duration before now. Empty means no bound.
func parseTimeFlag(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n > 0 {
			d = time.Duration(n) * 24 * time.Hour
		}
	} else if pd, err := time.ParseDuration(v); err == nil && pd > 0 {
		d = pd
	}
	if d == 0 {
		return time.Time{}, fmt.Errorf("--%s %q: give an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration back from now (90m, 24h, 7d)", name, v)
	}
	return now.Add(-d), nil
}

// auditCSVHeader names the columns of a CSV export.
var auditCSVHeader = []string{"id", "at", "actor", "roles", "source_ip", "user_agent", "slack_user", "slack_team",
	"device", "action", "release_id", "outcome", "details", "hash"}

// auditTimeLayout writes event times in exports: UTC, to the microsecond, as stored.
const auditTimeLayout = "2006-01-02T15:04:05.000000Z"

// auditWriter writes exported events in one format.
type auditWriter interface {
	write(ev apiclient.AuditEvent) error
	// close flushes what is buffered.
	close() error
}

func newAuditWriter(out io.Writer, format string) (auditWriter, error) {
	switch format {
	case "csv":
		w := &csvAuditWriter{w: csv.NewWriter(out)}
		return w, w.w.Write(auditCSVHeader)
	case "json":
		b := bufio.NewWriter(out)
		enc := json.NewEncoder(b)
		// Kept as sent: an auditor's tools, not a browser, read this.
		enc.SetEscapeHTML(false)
		return &jsonAuditWriter{b: b, enc: enc}, nil
	}
	return nil, fmt.Errorf("--format %q: use %s", format, strings.Join(auditFormats, " or "))
}

type csvAuditWriter struct{ w *csv.Writer }

func (c *csvAuditWriter) write(ev apiclient.AuditEvent) error {
	details := string(ev.Details)
	if details == "" {
		details = "{}"
	}
	return c.w.Write([]string{
		strconv.FormatInt(ev.ID, 10),
		ev.At.UTC().Format(auditTimeLayout),
		ev.Actor,
		strings.Join(ev.Roles, " "),
		ev.SourceIP,
		ev.UserAgent,
		ev.SlackUser,
		ev.SlackTeam,
		ev.Device,
		ev.Action,
		ev.ReleaseID,
		ev.Outcome,
		details,
		ev.Hash,
	})
}

func (c *csvAuditWriter) close() error {
	c.w.Flush()
	return c.w.Error()
}

type jsonAuditWriter struct {
	b   *bufio.Writer
	enc *json.Encoder
}

func (j *jsonAuditWriter) write(ev apiclient.AuditEvent) error { return j.enc.Encode(ev) }

func (j *jsonAuditWriter) close() error { return j.b.Flush() }
