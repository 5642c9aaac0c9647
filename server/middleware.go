package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/workflows"
)

const (
	headerRequestID = "X-Request-ID"
	ctxRequestID    = "trainyard.requestID"
	ctxPrincipal    = "trainyard.principal"
)

// A caller's request id is echoed into logs and responses, so only a plain one is kept.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestLog gives each request an id (the caller's X-Request-ID when it sends a sane one) and
// logs one line per request. It logs no headers: Authorization carries a secret.
func (s *Server) requestLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		id := c.GetHeader(headerRequestID)
		if !requestIDPattern.MatchString(id) {
			id = newRequestID()
		}
		c.Set(ctxRequestID, id)
		c.Header(headerRequestID, id)

		c.Next()

		attrs := []slog.Attr{
			slog.String("requestId", id),
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", c.Writer.Status()),
			slog.Int("bytes", max(c.Writer.Size(), 0)),
			slog.Duration("duration", time.Since(start)),
			slog.String("clientIp", c.ClientIP()),
		}
		if p, ok := principalOf(c); ok {
			attrs = append(attrs, slog.String("principal", p.Name))
		}
		if len(c.Errors) > 0 {
			attrs = append(attrs, slog.String("error", c.Errors.String()))
		}
		level := slog.LevelInfo
		if c.Writer.Status() >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(c.Request.Context(), level, "http request", attrs...)
	}
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// recovery turns a panic into a 500 problem and a log line with the stack, instead of a
// dropped connection.
func (s *Server) recovery() gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		s.log.ErrorContext(c.Request.Context(), "panic in handler",
			slog.String("requestId", requestID(c)),
			slog.String("path", c.Request.URL.Path),
			slog.String("panic", fmt.Sprint(rec)),
			slog.String("stack", string(debug.Stack())))
		fail(c, http.StatusInternalServerError, "the server failed while handling this request; it has been logged with request id "+requestID(c))
	})
}

// bodyLimit refuses bodies over limit: at once when Content-Length says so, and otherwise
// when a handler reads past it (see readBody).
func bodyLimit(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit := limit
		if c.Request.Method == http.MethodPost && c.FullPath() == reportsRoute {
			// Scan reports of large images run to megabytes; they are stored as sent.
			limit = maxReportBytes
		}
		if c.Request.ContentLength > limit {
			fail(c, http.StatusRequestEntityTooLarge, tooLargeDetail(limit))
			return
		}
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		}
		c.Next()
	}
}

func tooLargeDetail(limit int64) string {
	size := fmt.Sprintf("%d bytes", limit)
	if limit%(1<<20) == 0 {
		size = fmt.Sprintf("%d MiB", limit>>20)
	}
	return fmt.Sprintf("the request body is larger than %s; send a smaller body (large reports belong in artifacts, not in the release request)", size)
}

// authenticate resolves the bearer token to a principal, or answers 401.
func (s *Server) authenticate() gin.HandlerFunc {
	return func(c *gin.Context) {
		token, ok := bearerToken(c.GetHeader("Authorization"))
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="trainyard"`)
			fail(c, http.StatusUnauthorized, "send your API token as the header \"Authorization: Bearer <token>\"")
			return
		}
		name, roles, ok := s.deps.Auth.Lookup(token)
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="trainyard", error="invalid_token"`)
			fail(c, http.StatusUnauthorized, "the bearer token is not known to this server; check TRAINYARD_TOKEN or ask an operator for a token")
			return
		}
		c.Set(ctxPrincipal, workflows.Principal{Name: name, Roles: roles})
		c.Next()
	}
}

func bearerToken(header string) (string, bool) {
	scheme, token, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func principalOf(c *gin.Context) (workflows.Principal, bool) {
	v, ok := c.Get(ctxPrincipal)
	if !ok {
		return workflows.Principal{}, false
	}
	p, ok := v.(workflows.Principal)
	return p, ok
}

// principal is the caller of an authenticated route.
func principal(c *gin.Context) workflows.Principal {
	p, _ := principalOf(c)
	return p
}
