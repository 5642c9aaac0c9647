package probe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// statusPage serves body at path as Statuspage does, and 404 elsewhere.
func statusPage(t *testing.T, path string, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestStatusPage_ReadsEachIndicator(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want Status
	}{
		{
			file: "summary-none.json",
			want: Status{Indicator: "none", Description: "All Systems Operational", Operational: true, Degraded: []string{}},
		},
		{
			file: "summary-minor.json",
			want: Status{Indicator: "minor", Description: "Minor Service Outage", Degraded: []string{"Webhooks: degraded_performance"}},
		},
		{
			// The Card Processing group is down because Visa is: Visa alone is named.
			file: "summary-major.json",
			want: Status{Indicator: "major", Description: "Partial System Outage", Degraded: []string{"API: partial_outage", "Visa: partial_outage"}},
		},
		{
			file: "summary-critical.json",
			want: Status{Indicator: "critical", Description: "Major System Outage", Degraded: []string{
				"API: major_outage", "Dashboard: major_outage", "Webhooks: major_outage", "Visa: major_outage", "Mastercard: major_outage",
			}},
		},
		{
			file: "summary-maintenance.json",
			want: Status{Indicator: "maintenance", Description: "Service Under Maintenance", Degraded: []string{"Dashboard: under_maintenance"}},
		},
		{
			file: "status-none.json",
			want: Status{Indicator: "none", Description: "All Systems Operational", Operational: true, Degraded: []string{}},
		},
		{
			file: "status-major.json",
			want: Status{Indicator: "major", Description: "Partial System Outage", Degraded: []string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(filepath.Join("testdata", tt.file))
			require.NoError(t, err)
			path := "/api/v2/summary.json"
			if strings.HasPrefix(tt.file, "status-") {
				path = "/api/v2/status.json"
			}
			srv := statusPage(t, path, body)

			got, err := StatusPage(context.Background(), nil, srv.URL+path)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestStatusPage_ReadsTheSummaryOfAPageRoot(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile(filepath.Join("testdata", "summary-minor.json"))
	require.NoError(t, err)
	srv := statusPage(t, "/api/v2/summary.json", body)
	for _, root := range []string{srv.URL, srv.URL + "/"} {
		got, err := StatusPage(context.Background(), srv.Client(), root)
		require.NoError(t, err, root)
		require.Equal(t, "minor", got.Indicator)
	}
}

func TestStatusPage_AComponentDownIsNotOperationalWhateverTheIndicator(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, components, degraded string
	}{
		{name: "partial outage", components: `[{"name": "API", "status": "partial_outage", "group": false}]`, degraded: "API: partial_outage"},
		{name: "a status Statuspage may add later", components: `[{"name": "API", "status": "brownout"}]`, degraded: "API: brownout"},
		{name: "no status", components: `[{"name": "API"}]`, degraded: "API: unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := statusPage(t, "/api/v2/summary.json", []byte(`{"status": {"indicator": "none", "description": "All Systems Operational"}, "components": `+tt.components+`}`))
			got, err := StatusPage(context.Background(), nil, srv.URL)
			require.NoError(t, err)
			require.False(t, got.Operational)
			require.Equal(t, []string{tt.degraded}, got.Degraded)
		})
	}
}

func TestStatusPage_SaysWhatWentWrong(t *testing.T) {
	t.Parallel()
	huge := `{"status": {"indicator": "none"}, "page": {"name": "` + strings.Repeat("x", maxStatusPageBytes) + `"}}`
	tests := []struct {
		name    string
		handler http.HandlerFunc
		check   func(t *testing.T, err error)
	}{
		{
			name:    "not found",
			handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			check: func(t *testing.T, err error) {
				var re *ResponseError
				require.ErrorAs(t, err, &re)
				require.Equal(t, http.StatusNotFound, re.StatusCode)
				require.False(t, re.Retryable())
				require.ErrorContains(t, err, "answered 404 Not Found")
			},
		},
		{
			name:    "server error",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) },
			check: func(t *testing.T, err error) {
				var re *ResponseError
				require.ErrorAs(t, err, &re)
				require.True(t, re.Retryable())
			},
		},
		{
			name: "an HTML page",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = w.Write([]byte("<!DOCTYPE html><html><body>Ledgerly Status</body></html>"))
			},
			check: func(t *testing.T, err error) {
				require.ErrorIs(t, err, ErrUnexpectedResponse)
				require.ErrorContains(t, err, "answered text/html without a status.indicator")
			},
		},
		{
			name: "JSON that is not a Statuspage document",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(`{"healthy": true}`))
			},
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, ErrUnexpectedResponse) },
		},
		{
			name:    "a body over the bound",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(huge)) },
			check: func(t *testing.T, err error) {
				require.ErrorIs(t, err, ErrUnexpectedResponse)
				require.ErrorContains(t, err, "larger than")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			_, err := StatusPage(context.Background(), nil, srv.URL+"/api/v2/summary.json?api_key=s3cr3t")
			require.Error(t, err)
			require.NotContains(t, err.Error(), "s3cr3t")
			tt.check(t, err)
		})
	}
}

func TestStatusPage_FailsToReachAPage(t *testing.T) {
	t.Parallel()
	_, err := StatusPage(context.Background(), nil, closedURL(t)+"/api/v2/summary.json")
	require.ErrorContains(t, err, "connection refused")

	for _, bad := range []string{"", "status.example.com", "ftp://status.example.com", "http://[::1"} {
		_, err := StatusPage(context.Background(), nil, bad)
		require.ErrorIs(t, err, ErrInvalidCheck, bad)
	}

	srv := statusPage(t, "/api/v2/summary.json", []byte(`{"status": {"indicator": "none"}}`))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = StatusPage(ctx, nil, srv.URL)
	require.ErrorIs(t, err, context.Canceled)
}
