package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A scan report may be large; the requests after it may not.
func TestBodyLimit_AReportUploadDoesNotRaiseTheLimitOfLaterRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	big := strings.Repeat("a", maxBodyBytes+1)
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/reports", token: ciToken, body: big})
	require.NotEqual(t, http.StatusRequestEntityTooLarge, rec.Code, "reports may exceed the general limit: %s", rec.Body.String())

	rec = h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken,
		body: `{"runbook":"hello","version":"1.2.3","change":{"commit":"` + big + `"}}`})
	requireProblem(t, rec, http.StatusRequestEntityTooLarge, "/api/v1/releases")
}
