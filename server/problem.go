package server

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/runbooks"
)

// problem is an RFC 9457 problem detail. Detail is written for the person reading it: it says
// what to change, not only what went wrong.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`

	// Extension members.
	RequestID string             `json:"requestId,omitempty"`
	Problems  []runbooks.Problem `json:"problems,omitempty"`
	// Reason is the release's refusal type (workflows.ErrType*) when it refused an Update.
	Reason string            `json:"reason,omitempty"`
	Checks map[string]string `json:"checks,omitempty"`
}

// Problem types. Most answers are about:blank (the status says it all); an invalid runbook
// has its own type because its "problems" member lists located problems a client shows line
// by line.
const (
	problemTypeBlank          = "about:blank"
	problemTypeInvalidRunbook = "tag:trainyard.dev,2026:invalid-runbook"
)

const problemContentType = "application/problem+json"

// newProblem starts a problem of the generic type, whose title is the status text.
func newProblem(status int, detail string) *problem {
	return &problem{Type: problemTypeBlank, Title: http.StatusText(status), Status: status, Detail: detail}
}

// abortWithProblem writes p and stops the handler chain.
func abortWithProblem(c *gin.Context, p *problem) {
	if p.Instance == "" {
		p.Instance = c.Request.URL.Path
	}
	if p.RequestID == "" {
		p.RequestID = requestID(c)
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	// Details quote things like "Bearer <token>"; people read them, so no \u003c escapes.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		// Every field is a plain type; a marshal failure is a programming error, and the
		// caller still deserves the status.
		body.Reset()
		body.WriteString(`{"type":"about:blank","status":500,"title":"Internal Server Error"}`)
	}
	c.Abort()
	c.Data(p.Status, problemContentType, body.Bytes())
}

// fail answers with a generic problem.
func fail(c *gin.Context, status int, detail string) {
	abortWithProblem(c, newProblem(status, detail))
}
