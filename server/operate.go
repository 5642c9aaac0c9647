package server

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Audit actions of the operator endpoints.
const (
	actionPause  = "release.pause"
	actionResume = "release.resume"
)

type operatorRequest struct {
	Reason string `json:"reason"`
}

const operatorExample = `{"reason":"waiting for the payments team's go-ahead"}`

// operation says how an operator endpoint treats its requests.
type operation struct {
	update, action string
	// reasonRequired refuses a request without a reason; example shows a valid body.
	reasonRequired bool
	example        string
	// oncePerPerson derives the Update id from the person alone (rollback, fix-forward: a
	// retried call applies once); otherwise each request is its own Update (pausing twice is
	// refused by the release, already paused, not merged with an earlier pause).
	oncePerPerson bool
}

// operate answers POST /releases/:id/<update> for an operator Update (pause, resume,
// rollback, fix-forward) through operateAs, which Slack shares. The workflow's validator
// decides who may; every attempt is audited. An Idempotency-Key always names the Update.
func (s *Server) operate(op operation) gin.HandlerFunc {
	if op.example == "" {
		op.example = operatorExample
	}
	return func(c *gin.Context) {
		id := c.Param("id")
		var req operatorRequest
		if c.Request.ContentLength != 0 {
			if p := decodeJSON(c, &req, op.example); p != nil {
				s.refuse(c, op.action, id, p, nil)
				return
			}
		}
		details := map[string]any{"reason": req.Reason}
		if op.reasonRequired && strings.TrimSpace(req.Reason) == "" {
			s.refuse(c, op.action, id, newProblem(http.StatusBadRequest, "reason is required: say why, as in "+op.example), details)
			return
		}
		key := c.GetHeader(headerIdempotencyKey)
		if key != "" && !idempotencyKeyPattern.MatchString(key) {
			s.refuse(c, op.action, id, newProblem(http.StatusBadRequest, fmt.Sprintf("the Idempotency-Key header %q is not usable: use 1 to 128 letters, digits, '.', '_', ':' or '-'", key)), details)
			return
		}
		p := principal(c)
		updateID := op.update + "/" + p.Name
		switch {
		case key != "":
			updateID += "/" + key
		case !op.oncePerPerson:
			updateID += "/" + requestID(c)
		}
		res, prob := s.operateAs(c.Request.Context(), httpActor(c), id, op.update, op.action, updateID, req.Reason)
		if prob != nil {
			abortWithProblem(c, prob)
			return
		}
		c.JSON(http.StatusAccepted, res)
	}
}
