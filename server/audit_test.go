package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/store"
)

func TestAudit_RecordsTheDeviceTheCallerNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, header, want string
	}{
		{name: "none", header: "", want: ""},
		{name: "as sent", header: "alice-laptop (macOS 15)", want: "alice-laptop (macOS 15)"},
		{name: "trimmed", header: "  ci-runner-7  ", want: "ci-runner-7"},
		{name: "cut to 200 characters", header: strings.Repeat("é", 150) + strings.Repeat("x", 100), want: strings.Repeat("é", 150) + strings.Repeat("x", 50)},
		{name: "invalid UTF-8 replaced", header: "pc-\xff\xfe-1", want: "pc-\uFFFD-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			c := call{method: http.MethodPost, path: "/api/v1/releases/r1/abort", token: approverToken, body: `{"reason":"stop"}`}
			if tt.header != "" {
				c.header = map[string]string{headerDevice: tt.header}
			}
			rec := h.do(t, c)
			require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
			audits := h.store.auditRows()
			require.Len(t, audits, 1)
			require.Equal(t, tt.want, audits[0].Device)
			require.LessOrEqual(t, utf8.RuneCountInString(audits[0].Device), maxDeviceChars)
			require.Empty(t, audits[0].SlackUser, "Slack fields wait for the Slack app")
			require.Empty(t, audits[0].SlackTeam)
		})
	}
}

func TestListAudit_PagesAfterAnID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var got []store.AuditFilter
	h.store.ListAuditFunc = func(_ context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
		got = append(got, f)
		if f.After == 404 {
			return nil, fmt.Errorf("list audit events after id 404: %w", store.ErrNotFound)
		}
		return []store.AuditEvent{{ID: f.After + 1, Actor: "alice", Action: actionApprove, Outcome: store.OutcomeAllowed,
			Device: "alice-laptop", PrevHash: "aa", Hash: "bb"}}, nil
	}

	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/audit?release=r1&after=7&limit=2", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, store.AuditFilter{ReleaseID: "r1", After: 7, Limit: 2}, got[0])
	var body struct {
		Events []map[string]any `json:"events"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Len(t, body.Events, 1)
	ev := body.Events[0]
	require.Equal(t, float64(8), ev["id"])
	require.Equal(t, "alice-laptop", ev["device"])
	require.Equal(t, "aa", ev["prevHash"])
	require.Equal(t, "bb", ev["hash"])

	for _, tt := range []struct{ query, detail string }{
		{"after=abc", `after must be the id of an audit event (a whole number from 1), not "abc"`},
		{"after=0", `not "0"`},
		{"after=-3", `not "-3"`},
		{"after=404", "after names no audit event"},
	} {
		rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/audit?" + tt.query, token: ciToken})
		p := requireProblem(t, rec, http.StatusBadRequest, "/api/v1/audit")
		require.Contains(t, p.Detail, tt.detail, tt.query)
	}
	require.Len(t, got, 2, "malformed cursors never reach the store")
}
