package server

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/workflows"
)

// Limits and timeouts of the HTTP API.
const (
	// maxBodyBytes bounds every request body: a release request or a runbook is a few KiB.
	maxBodyBytes = 1 << 20

	// statusTimeout bounds a status query, which waits for a worker to answer it.
	statusTimeout = 10 * time.Second
	// updateTimeout bounds an approval or abort, which waits for the workflow to validate
	// and apply it. Update IDs are deterministic, so a caller that times out can retry.
	updateTimeout = 30 * time.Second
	// pingTimeout bounds each readiness check.
	pingTimeout = 2 * time.Second
	// auditTimeout bounds an audit write, which outlives a caller that hung up.
	auditTimeout = 5 * time.Second
)

// Runbooks is where releases' runbooks come from: a runbooks.Registry in production (loaded
// at start and on SIGHUP), a runbooks.Catalog in tests.
type Runbooks interface {
	Get(name string) (runbooks.Runbook, error)
	All() ([]runbooks.Runbook, error)
}

// Deps is what the server needs.
type Deps struct {
	Engine  Engine
	Store   Store
	Auth    *config.Authenticator
	Catalog Runbooks
	// PublicURL is how callers reach this API (no trailing slash), used in links.
	PublicURL string
	// TemporalUIURL and Namespace build links to a release in the Temporal UI.
	TemporalUIURL string
	Namespace     string
	Logger        *slog.Logger
	// Governance serves freeze calendars and waivers (server/freezes.go).
	Governance Governance
	// Slack serves the Slack app (server/slack.go); nil leaves it off.
	Slack *Slack
}

// Server is the HTTP API.
type Server struct {
	deps    Deps
	log     *slog.Logger
	handler *gin.Engine
	now     func() time.Time
	// Timeouts of calls into the engine; fields so tests can shorten them.
	statusTimeout, updateTimeout time.Duration
	metrics                      *metrics
	slack                        *slackApp
}

// New builds the server and its routes. gin's mode is process-wide, so the caller sets it
// (gin.SetMode(gin.ReleaseMode) outside dev) before calling New.
func New(deps Deps) *Server {
	deps.PublicURL = strings.TrimRight(deps.PublicURL, "/")
	deps.TemporalUIURL = strings.TrimRight(deps.TemporalUIURL, "/")
	if deps.Namespace == "" {
		deps.Namespace = "default"
	}
	if deps.Auth == nil {
		// No principals configured means nobody may call the API, not everybody.
		deps.Auth = config.NewAuthenticator(nil)
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{deps: deps, log: log, now: time.Now, statusTimeout: statusTimeout, updateTimeout: updateTimeout, metrics: newMetrics()}
	s.handler = s.routes()
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// HTTPServer returns an http.Server for the API with timeouts set, so a slow or stuck client
// cannot hold a connection forever.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Longer than updateTimeout, so a slow Update still gets its answer written.
		WriteTimeout:   updateTimeout + 30*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

func (s *Server) routes() *gin.Engine {
	r := gin.New()
	// The audit trail records c.ClientIP(); trusting X-Forwarded-For from anyone would let a
	// caller write any source address into it.
	_ = r.SetTrustedProxies(nil)
	r.HandleMethodNotAllowed = true

	r.Use(s.requestLog(), s.metrics.observe(), s.recovery(), bodyLimit(maxBodyBytes))

	r.NoRoute(func(c *gin.Context) {
		fail(c, http.StatusNotFound, "no such endpoint: "+c.Request.Method+" "+c.Request.URL.Path+"; the API lives under /api/v1 (releases, runbooks, audit)")
	})
	r.NoMethod(func(c *gin.Context) {
		fail(c, http.StatusMethodNotAllowed, c.Request.Method+" is not allowed on "+c.Request.URL.Path)
	})

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	// Unauthenticated like the probes: scrapers hold no API token, and the series carry no
	// release data beyond route patterns and action names.
	r.GET("/metrics", s.metrics.handler())
	// Signed by Slack rather than carrying a bearer token (server/slack.go).
	s.slackRoutes(r)

	api := r.Group("/api/v1", s.authenticate())
	api.POST("/releases", s.startRelease)
	api.GET("/releases", s.listReleases)
	api.GET("/releases/:id", s.releaseStatus)
	api.POST("/releases/:id/approvals", s.decide)
	api.POST("/releases/:id/abort", s.abort)
	api.POST("/releases/:id/pause", s.operate(operation{update: workflows.UpdatePause, action: actionPause, reasonRequired: true}))
	api.POST("/releases/:id/resume", s.operate(operation{update: workflows.UpdateResume, action: actionResume}))
	s.readinessRoutes(api)   // scan reports, gate results, restore drills
	s.environmentRoutes(api) // reservations, promotions
	api.GET("/runbooks", s.listRunbooks)
	api.POST("/runbooks/validate", s.validateRunbook)
	api.GET("/audit", s.listAudit)
	s.governanceRoutes(api) // calendars, freeze, waivers
	s.incidentRoutes(api)   // rollback, fix forward, reports, markers, circuit breakers
	return r
}
