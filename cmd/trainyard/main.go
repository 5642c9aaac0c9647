// Command trainyard is the one Trainyard binary: the HTTP server, the workers, migrations,
// the all-in-one dev mode, and the release CLI that talks to the HTTP API.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/freeze"
	"github.com/trainyard/trainyard/internal/temporalconn"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/server"
	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/worker"
)

func main() {
	// gin's debug mode prints every route at start-up; our access log says what matters.
	gin.SetMode(gin.ReleaseMode)
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "trainyard",
		Short:         "Run software releases as durable Temporal workflows",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", os.Getenv("TRAINYARD_CONFIG"), "configuration file (YAML; env TRAINYARD_CONFIG)")
	root.AddCommand(newDevCmd(), newServerCmd(), newWorkerCmd(), newMigrateCmd(), newRunbookCmd(), newReleaseCmd(), newAuditCmd())
	root.AddCommand(newDevicesimCmd())
	return root
}

// loadConfig reads the configuration of a production process: the dev tokens are refused.
func loadConfig(cmd *cobra.Command) (config.Config, *slog.Logger, error) {
	path, _ := cmd.Flags().GetString("config")
	cfg, err := config.Load(path)
	if err != nil {
		return cfg, nil, err
	}
	if err := cfg.Validate(false); err != nil {
		return cfg, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, newLogger(cfg.LogFormat), nil
}

func newLogger(format string) *slog.Logger {
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	} else {
		h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	return slog.New(h)
}

// signalContext ends on Ctrl-C or SIGTERM, the way operators and orchestrators stop us.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func openStore(ctx context.Context, url string) (*store.Store, error) {
	if url == "" {
		return nil, errors.New("no database: set DATABASE_URL (or databaseURL in the config file)")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return store.Open(ctx, url)
}

func dialTemporal(ctx context.Context, cfg config.Temporal, logger *slog.Logger) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return temporalconn.Dial(ctx, cfg, logger)
}

func newServerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "server",
		Short: "Serve the HTTP API (releases, approvals, runbooks, health)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			st, err := openStore(ctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer st.Close()
			tc, err := dialTemporal(ctx, cfg.Temporal, logger)
			if err != nil {
				return err
			}
			defer tc.Close()
			reg, err := loadRunbooks(cfg, logger)
			if err != nil {
				return err
			}
			return serveHTTP(ctx, cfg, logger, st, tc, reg, loadCalendars(cfg, logger))
		},
	}
}

// loadRunbooks reads the runbooks folder once at start; invalid files are reported and left
// out.
func loadRunbooks(cfg config.Config, logger *slog.Logger) (*runbooks.Registry, error) {
	reg, err := runbooks.NewRegistry(cfg.RunbooksDir)
	if err != nil {
		return nil, fmt.Errorf("load runbooks: %w", err)
	}
	if _, problems := reg.All(); problems != nil {
		logger.Warn("some runbook files are invalid and not offered", "dir", cfg.RunbooksDir, "problems", problems.Error())
	}
	return reg, nil
}

// serveHTTP runs the API until ctx ends, then drains requests in flight. The runbooks are
// read again on SIGHUP.
func serveHTTP(ctx context.Context, cfg config.Config, logger *slog.Logger, st *store.Store, tc client.Client,
	reg *runbooks.Registry, cals *freeze.Catalog) error {
	go reloadOnHangup(ctx, reg, logger)
	srv := server.New(server.Deps{
		Engine:        &server.TemporalEngine{Client: tc},
		Store:         st,
		Auth:          config.NewAuthenticator(cfg.ResolvedPrincipals()),
		Catalog:       reg,
		Governance:    server.Governance{Calendars: cals, Config: cfg.Governance},
		PublicURL:     cfg.PublicBaseURL(),
		TemporalUIURL: cfg.Temporal.UIURL,
		Namespace:     cfg.Temporal.Namespace,
		Logger:        logger,
		Slack:         slackServer(cfg),
	})
	startSocketMode(ctx, cfg, srv, logger)
	hs := srv.HTTPServer(cfg.HTTPAddr)
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	logger.Info("http server listening", "addr", cfg.HTTPAddr)
	select {
	case err := <-errc:
		return fmt.Errorf("http server on %s: %w", cfg.HTTPAddr, err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("stop http server: %w", err)
	}
	return nil
}

// reloadOnHangup reloads the runbooks on every SIGHUP until ctx ends.
func reloadOnHangup(ctx context.Context, reg *runbooks.Registry, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := reg.Reload(); err != nil {
				logger.Error("runbooks not reloaded", "error", err.Error())
				continue
			}
			all, _ := reg.All()
			logger.Info("runbooks reloaded", "dir", reg.Dir(), "count", len(all))
		}
	}
}

func newWorkerCmd() *cobra.Command {
	var sites []string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a Temporal worker: the main queue, or with --site a site's command queue",
		Long: `Without --site, serves the main task queue: release and stage workflows and the store
activities (needs DATABASE_URL). With --site NAME (repeatable), serves only the command queue
of those sites (trainyard-site-NAME): run it inside the site's network; it needs Temporal but
not the database.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			tc, err := dialTemporal(ctx, cfg.Temporal, logger)
			if err != nil {
				return err
			}
			defer tc.Close()
			acts, err := newActivities(cfg, logger, cfg.Site.WorkDir, loadCalendars(cfg, logger))
			if err != nil {
				return err
			}
			acts.Deploy = deployClients(cfg.Rollout)
			var workers []sdkworker.Worker
			if len(sites) == 0 {
				st, err := openStore(ctx, cfg.DatabaseURL)
				if err != nil {
					return err
				}
				defer st.Close()
				acts.Store, acts.Temporal = st, tc
				acts.Grafana = annotations(cfg)
				withSlack(cfg, acts, logger)
				if err := temporalconn.EnsureSearchAttributes(ctx, tc, cfg.Temporal.Namespace, logger); err != nil {
					logger.Warn("search attributes", "error", err)
				}
				workers = append(workers, worker.NewMain(tc, acts))
				workers = append(workers, worker.NewCloud(tc, acts))
			}
			for _, site := range sites {
				if !runbooks.NamePattern.MatchString(site) {
					return fmt.Errorf("--site %q: site names use lowercase letters, digits and dashes", site)
				}
				workers = append(workers, worker.NewSite(tc, site, acts))
			}
			return runWorkers(ctx, logger, workers)
		},
	}
	cmd.Flags().StringSliceVar(&sites, "site", nil, "serve only this site's command queue (repeatable)")
	return cmd
}

// runWorkers starts the workers and stops them when ctx ends.
func runWorkers(ctx context.Context, logger *slog.Logger, workers []sdkworker.Worker) error {
	for i, w := range workers {
		if err := w.Start(); err != nil {
			for _, started := range workers[:i] {
				started.Stop()
			}
			return fmt.Errorf("start worker: %w", err)
		}
	}
	logger.Info("workers running", "count", len(workers))
	<-ctx.Done()
	for _, w := range workers {
		w.Stop()
	}
	return nil
}

func newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations and exit",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(ctx context.Context, st *store.Store) error {
				if err := st.Migrate(ctx); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "database is up to date")
				return nil
			})
		},
	}
}

// withStore runs fn with the store of the configured database: for the commands that work on
// the database directly (migrations, audit verification) and need no API token.
func withStore(cmd *cobra.Command, fn func(context.Context, *store.Store) error) error {
	path, _ := cmd.Flags().GetString("config")
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	st, err := openStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(ctx, st)
}
