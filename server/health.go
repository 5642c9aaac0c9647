package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
)

// healthz says the process is up; it checks nothing else, so a Temporal outage does not get
// the server restarted.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz says whether the server can do its work: Temporal and the database both answer.
func (s *Server) readyz(c *gin.Context) {
	checks := map[string]func(context.Context) error{
		"temporal": s.deps.Engine.Ping,
		"database": s.deps.Store.Ping,
	}
	results := make(map[string]string, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, ping := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(c.Request.Context(), pingTimeout)
			defer cancel()
			err := ping(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				// The error may name hosts; it goes to the log, not to an unauthenticated caller.
				s.log.WarnContext(ctx, "readiness check failed", slog.String("check", name), slog.Any("error", err))
				results[name] = "down"
				return
			}
			results[name] = "ok"
		})
	}
	wg.Wait()

	var down []string
	for _, name := range []string{"temporal", "database"} {
		if results[name] != "ok" {
			down = append(down, name)
		}
	}
	if len(down) > 0 {
		p := newProblem(http.StatusServiceUnavailable, "not ready: "+strings.Join(down, " and ")+" not reachable; see the server log")
		p.Checks = results
		abortWithProblem(c, p)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "checks": results})
}
