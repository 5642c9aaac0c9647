package main

import (
	"context"

	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/internal/devtemporal"
	"github.com/trainyard/trainyard/internal/pgserver"
	"github.com/trainyard/trainyard/internal/temporalconn"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/worker"
)

func newDevCmd() *cobra.Command {
	var dataDir, temporalCLI string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system on this machine: Temporal, PostgreSQL, workers and the API",
		Long: `Runs everything a release needs with nothing to configure: the official Temporal dev
server with its Web UI (unless TEMPORAL_ADDRESS is set), a private PostgreSQL under
--data-dir (unless DATABASE_URL is set), the migrations, a worker for the main queue and
one for every site the runbooks name, and the HTTP API with two public dev tokens.
Ctrl-C stops everything; the next run finds the same releases.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, _ := cmd.Flags().GetString("config")
			cfg, err := config.LoadDev(path)
			if err != nil {
				return err
			}
			if err := cfg.Validate(true); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			return runDev(cmd.OutOrStdout(), cfg, dataDir, temporalCLI)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", ".trainyard", "where dev mode keeps PostgreSQL, Temporal and site data")
	cmd.Flags().StringVar(&temporalCLI, "temporal-cli", "bin/temporal", "the temporal CLI that runs the dev server")
	return cmd
}

func runDev(out io.Writer, cfg config.Config, dataDir, temporalCLI string) error {
	logger := newLogger("text")
	// Output piped into a pager or tee that quits must not kill us before we stop our children.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signalContext()
	defer stop()
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dataDir, err)
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dataDir, err)
	}
	dataDir = abs

	if os.Getenv("DATABASE_URL") == "" && os.Getenv("TRAINYARD_DATABASE_URL") == "" {
		fmt.Fprintln(out, "starting PostgreSQL in", filepath.Join(dataDir, "pg"))
		pg, err := pgserver.Start(ctx, pgserver.Options{DataDir: filepath.Join(dataDir, "pg"), Logger: logger, DieWithParent: true})
		if err != nil {
			return fmt.Errorf("start PostgreSQL (or set DATABASE_URL to use yours): %w", err)
		}
		defer func() {
			if err := pg.Stop(); err != nil {
				logger.Error("stop PostgreSQL", "error", err)
			}
		}()
		cfg.DatabaseURL = pg.URL()
	}

	if os.Getenv("TEMPORAL_ADDRESS") == "" && os.Getenv("TRAINYARD_TEMPORAL_ADDRESS") == "" {
		fmt.Fprintln(out, "starting the Temporal dev server (data in", filepath.Join(dataDir, "temporal.db")+")")
		ts, err := devtemporal.Start(ctx, devtemporal.Options{
			CLI: temporalCLI, DBFile: filepath.Join(dataDir, "temporal.db"), LogFile: filepath.Join(dataDir, "temporal.log"),
			IP: "127.0.0.1", Port: 7233, UIPort: 8233, Namespace: cfg.Temporal.Namespace, Logger: logger,
		})
		if err != nil {
			return err
		}
		defer func() {
			fmt.Fprintln(out, "stopping the Temporal dev server")
			if err := ts.Stop(); err != nil {
				logger.Error("stop Temporal", "error", err)
			}
		}()
		cfg.Temporal.Address = ts.Address()
		cfg.Temporal.UIURL = ts.UIURL()
	}

	st, err := openStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	tc, err := dialTemporal(ctx, cfg.Temporal, logger)
	if err != nil {
		return err
	}
	defer tc.Close()
	saCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if err := temporalconn.EnsureSearchAttributes(saCtx, tc, cfg.Temporal.Namespace, logger); err != nil {
		logger.Warn("search attributes", "error", err)
	}
	cancel()

	reg, err := loadRunbooks(cfg, logger)
	if err != nil {
		return err
	}
	rbs, _ := reg.All()
	cals := loadCalendars(cfg, logger)
	siteDir := cfg.Site.WorkDir
	if !filepath.IsAbs(siteDir) {
		siteDir = filepath.Join(filepath.Dir(dataDir), siteDir)
	}
	acts, err := newActivities(cfg, logger, siteDir, cals)
	if err != nil {
		return err
	}
	acts.Store, acts.Temporal = st, tc
	acts.Grafana = annotations(cfg)
	withSlack(cfg, acts, logger)
	acts.Deploy = deployClients(cfg.Rollout)
	workers := []sdkworker.Worker{worker.NewMain(tc, acts)}
	workers = append(workers, worker.NewCloud(tc, acts))
	var sites []string
	seen := map[string]bool{}
	for _, rb := range rbs {
		for _, s := range rb.Sites() {
			if !seen[s] {
				seen[s] = true
				sites = append(sites, s)
				workers = append(workers, worker.NewSite(tc, s, acts))
			}
		}
	}
	for i, w := range workers {
		if err := w.Start(); err != nil {
			for _, started := range workers[:i] {
				started.Stop()
			}
			return fmt.Errorf("start worker: %w", err)
		}
	}
	defer func() {
		for _, w := range workers {
			w.Stop()
		}
	}()

	httpErr := make(chan error, 1)
	go func() { httpErr <- serveHTTP(ctx, cfg, logger, st, tc, reg, cals) }()
	printBanner(out, cfg, rbs, sites, siteDir)

	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nstopping: HTTP server, workers, Temporal, PostgreSQL")
		if err := <-httpErr; err != nil {
			logger.Error("http server", "error", err)
		}
		return nil
	case err := <-httpErr:
		return err
	}
}

func printBanner(out io.Writer, cfg config.Config, rbs []runbooks.Runbook, sites []string, siteDir string) {
	api := cfg.PublicBaseURL()
	names := make([]string, len(rbs))
	for i, rb := range rbs {
		names[i] = rb.Name
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, "\nTrainyard is running.\n\n")
	fmt.Fprintf(b, "  API          %s   (health: %s/readyz)\n", api, api)
	fmt.Fprintf(b, "  Temporal UI  %s/namespaces/%s/workflows\n", cfg.Temporal.UIURL, cfg.Temporal.Namespace)
	fmt.Fprintf(b, "  Temporal     %s (namespace %s)\n", cfg.Temporal.Address, cfg.Temporal.Namespace)
	fmt.Fprintf(b, "  Runbooks     %s: %s\n", cfg.RunbooksDir, strings.Join(names, ", "))
	fmt.Fprintf(b, "  Site workers %s (commands run in %s/<site>)\n", strings.Join(sites, ", "), siteDir)
	fmt.Fprintf(b, "  Tokens       %s (CI: starts releases), %s (alice: approves)\n\n", config.DevToken, config.DevApproverToken)
	fmt.Fprintf(b, "Start the example release in another terminal:\n\n")
	fmt.Fprintf(b, "  export TRAINYARD_API_URL=%s\n", api)
	fmt.Fprintf(b, "  TRAINYARD_TOKEN=%s ./bin/trainyard release start hello 1.0.0\n", config.DevToken)
	fmt.Fprintf(b, "  TRAINYARD_TOKEN=%s ./bin/trainyard release approve release-hello-1.0.0\n", config.DevApproverToken)
	fmt.Fprintf(b, "  TRAINYARD_TOKEN=%s ./bin/trainyard release watch release-hello-1.0.0\n\n", config.DevToken)
	fmt.Fprintf(b, "or over HTTP:\n\n")
	fmt.Fprintf(b, "  curl -s -H 'Authorization: Bearer %s' -d '{\"runbook\":\"hello\",\"version\":\"1.0.0\"}' %s/api/v1/releases\n\n", config.DevToken, api)
	fmt.Fprintf(b, "Press Ctrl-C to stop everything.\n")
	fmt.Fprint(out, b.String())
}
