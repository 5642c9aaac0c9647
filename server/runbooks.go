package server

import (
	"errors"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/runbooks"
)

// runbookSummary is what a person choosing a runbook needs to see of it.
type runbookSummary struct {
	Name              string                  `json:"name"`
	Description       string                  `json:"description,omitempty"`
	Stages            []string                `json:"stages"`
	Environments      []string                `json:"environments,omitempty"`
	Sites             []string                `json:"sites,omitempty"`
	Approvals         []runbooks.ApprovalGate `json:"approvals,omitempty"`
	Stabilization     string                  `json:"stabilization,omitempty"`
	RollbackAuthority []string                `json:"rollbackAuthority,omitempty"`
}

func summarize(rb runbooks.Runbook) runbookSummary {
	sum := runbookSummary{
		Name:              rb.Name,
		Description:       rb.Description,
		Stages:            make([]string, len(rb.Stages)),
		Sites:             rb.Sites(),
		Approvals:         rb.Approvals,
		RollbackAuthority: rb.RollbackAuthority,
	}
	for i, st := range rb.Stages {
		sum.Stages[i] = st.Name
		if st.Environment != "" {
			sum.Environments = append(sum.Environments, st.Environment)
		}
	}
	if rb.Stabilization.Window > 0 {
		sum.Stabilization = rb.Stabilization.Window.String()
	}
	return sum
}

func (s *Server) listRunbooks(c *gin.Context) {
	all, err := s.deps.Catalog.All()
	// All joins the problems of each broken file; anything else means the folder itself
	// could not be read.
	var joined interface{ Unwrap() []error }
	if err != nil && !errors.As(err, &joined) {
		s.internal(c, "read the runbooks folder", err)
		return
	}
	out := make([]runbookSummary, len(all))
	for i, rb := range all {
		out[i] = summarize(rb)
	}
	problems := catalogProblems(err)
	if problems == nil {
		problems = []runbooks.Problem{}
	}
	c.JSON(http.StatusOK, gin.H{"runbooks": out, "problems": problems})
}

// catalogProblems flattens the error of Catalog.All into located problems, so broken runbook
// files are shown rather than hidden.
func catalogProblems(err error) []runbooks.Problem {
	if err == nil {
		return nil
	}
	var errs []error
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []runbooks.Problem
	for _, e := range errs {
		var invalid *runbooks.InvalidError
		if errors.As(e, &invalid) {
			out = append(out, invalid.Problems...)
			continue
		}
		out = append(out, runbooks.Problem{Msg: e.Error()})
	}
	return out
}

// validateFile names the request body in located problems.
const validateFile = "request"

func (s *Server) validateRunbook(c *gin.Context) {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			fail(c, http.StatusUnsupportedMediaType, "the Content-Type header is not a media type; send the runbook YAML as application/yaml")
			return
		case mt != "application/yaml" && mt != "application/x-yaml" && mt != "text/yaml" && mt != "text/x-yaml" && mt != "text/plain":
			fail(c, http.StatusUnsupportedMediaType, "send the runbook YAML itself as the body, with Content-Type application/yaml (or text/plain), not "+mt)
			return
		}
	}
	data, p := readBody(c)
	if p != nil {
		abortWithProblem(c, p)
		return
	}
	rb, err := runbooks.Parse(validateFile, data)
	var invalid *runbooks.InvalidError
	switch {
	case errors.As(err, &invalid):
		p := newProblem(http.StatusUnprocessableEntity, "the runbook has problems; fix each one at the line given")
		p.Type, p.Title, p.Problems = problemTypeInvalidRunbook, "Invalid runbook", invalid.Problems
		abortWithProblem(c, p)
		return
	case err != nil:
		s.internal(c, "validate the runbook", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"valid": true, "runbook": rb})
}
