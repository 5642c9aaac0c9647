package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/workflows"
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

// operate answers POST /releases/:id/<update> for an operator Update (pause, resume). The
// workflow's validator decides who may; every attempt is audited. Without an
// Idempotency-Key each request is its own Update: pausing twice is refused by the release
// (already paused), not silently merged with an earlier pause.
func (s *Server) operate(update, action string, reasonRequired bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		var req operatorRequest
		if c.Request.ContentLength != 0 {
			if p := decodeJSON(c, &req, operatorExample); p != nil {
				s.refuse(c, action, id, p, nil)
				return
			}
		}
		details := map[string]any{"reason": req.Reason}
		switch {
		case reasonRequired && strings.TrimSpace(req.Reason) == "":
			s.refuse(c, action, id, newProblem(http.StatusBadRequest, "reason is required: say why, as in "+operatorExample), details)
			return
		case len(req.Reason) > maxTextLen:
			s.refuse(c, action, id, newProblem(http.StatusBadRequest, fmt.Sprintf("the reason is %d bytes; keep it under %d", len(req.Reason), maxTextLen)), details)
			return
		}
		key := c.GetHeader(headerIdempotencyKey)
		if key != "" && !idempotencyKeyPattern.MatchString(key) {
			s.refuse(c, action, id, newProblem(http.StatusBadRequest, fmt.Sprintf("the Idempotency-Key header %q is not usable: use 1 to 128 letters, digits, '.', '_', ':' or '-'", key)), details)
			return
		}
		p := principal(c)
		updateID := update + "/" + p.Name + "/"
		if key != "" {
			updateID += key
		} else {
			updateID += requestID(c)
		}
		details["updateId"] = updateID
		ctx, cancel := context.WithTimeout(c.Request.Context(), s.updateTimeout)
		defer cancel()
		res, err := s.deps.Engine.Operate(ctx, id, updateID, update, workflows.OperatorRequest{Actor: p, Reason: req.Reason})
		if err != nil {
			s.updateFailure(ctx, c, action, id, details, err)
			return
		}
		details["phase"], details["paused"] = res.Phase, res.Paused
		s.audit(c, action, id, store.OutcomeAllowed, details)
		c.JSON(http.StatusAccepted, res)
	}
}
