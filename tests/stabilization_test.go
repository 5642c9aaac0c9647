package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/integrations/grafana"
	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/internal/promserver"
	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/workflows"
)

// observability is what the stabilization tests watch releases with: a real Prometheus
// scraping one test service per runbook (so one test's errors never reach another's
// queries), and a Grafana fake the worker draws release markers on.
type observability struct {
	prom     *promserver.Server
	services map[string]*promserver.TestService
	grafana  *grafana.Fake
	gsrv     *httptest.Server
}

const grafanaToken = "e2e-grafana-token-0001"

// Runbooks watched through Prometheus, each with its own test service.
var watchedRunbooks = []string{"steady", "watched", "benchbreach"}

// startObservability starts the services and Prometheus, and adds the runbooks that watch
// them to testRunbooks (their queries name their service's address).
func startObservability(ctx context.Context) (*observability, error) {
	o := &observability{services: map[string]*promserver.TestService{}}
	var targets []string
	for _, name := range watchedRunbooks {
		svc := promserver.NewTestService()
		o.services[name] = svc
		targets = append(targets, svc.Addr())
	}
	prom, err := promserver.Start(ctx, promserver.Options{Targets: targets})
	if err != nil {
		o.stop()
		return nil, fmt.Errorf("start Prometheus: %w", err)
	}
	o.prom = prom
	o.grafana = &grafana.Fake{Token: grafanaToken}
	o.gsrv = httptest.NewServer(o.grafana)
	testRunbooks["steady"] = scripts() + watchedRunbook("steady", o.services["steady"].Addr(), "15s", "") + stages()
	testRunbooks["watched"] = scripts() + watchedRunbook("watched", o.services["watched"].Addr(), "3m", `
rollback:
  budget: 1m
  circuitBreaker: {scope: runbook}
`) + stages()
	testRunbooks["benchbreach"] = watchedRunbook("benchbreach", o.services["benchbreach"].Addr(), "10m", "") + `
stages:
  - name: production
    environment: production
    targets:
      - name: bench-a
        kind: command
        site: e2e
        heartbeat: 3s
        deploy: 'mkdir -p "$TRAINYARD_RELEASE" && echo deployed'
        rollback: 'date +%s.%N > "$TRAINYARD_RELEASE.rollback" && echo rolled back'
`
	return o, nil
}

// errorRatio is the test service's share of 500s over window, as runbooks query it.
func errorRatio(addr, window string) string {
	return fmt.Sprintf(`sum(rate(testsvc_requests_total{instance="%s",code="500"}[%s])) / sum(rate(testsvc_requests_total{instance="%s"}[%s]))`,
		addr, window, addr, window)
}

// watchedRunbook watches an error-rate analysis (1s apart, compared with a baseline) and a
// 99% SLO's burn rate over 30s and 5s.
func watchedRunbook(name, addr, window, extra string) string {
	return fmt.Sprintf(`name: %s
rollbackAuthority: [release-manager]
analyses:
  - name: error-rate
    provider: prometheus
    query: '%s'
    failureCondition: result.value > 0.1
    interval: 1s
    baseline: true
stabilization:
  window: %s
  analyses: [error-rate]
  slo:
    objective: 99
    errorRatio: '%s'
    burnRates:
      - {long: 30s, short: 5s, factor: 10}
  onBreach: rollback
%s`, name, errorRatio(addr, "5s"), window, errorRatio(addr, "$window"), extra)
}

func (o *observability) config() string {
	return fmt.Sprintf("prometheus:\n  url: %s\ngrafana:\n  url: %s\n  token: %s\n", o.prom.URL(), o.gsrv.URL, grafanaToken)
}

func (o *observability) stop() {
	if o == nil {
		return
	}
	if o.gsrv != nil {
		o.gsrv.Close()
	}
	if o.prom != nil {
		_ = o.prom.Stop()
	}
	for _, svc := range o.services {
		svc.Close()
	}
}

// errorRateNow asks Prometheus what the runbook's error-rate analysis would see now.
func errorRateNow(t testing.TB, runbook string) (float64, bool) {
	t.Helper()
	q := &prometheus.Client{BaseURL: sys.obs.prom.URL(), HTTP: &http.Client{Timeout: 5 * time.Second}}
	s, err := q.Query(context.Background(), errorRatio(sys.obs.services[runbook].Addr(), "5s"), time.Time{})
	if err != nil {
		return 0, false
	}
	return s.Value, true
}

// waitErrorRate waits until Prometheus sees the runbook's error rate meet cond.
func waitErrorRate(t testing.TB, runbook, what string, cond func(float64) bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if v, ok := errorRateNow(t, runbook); ok && cond(v) {
			return time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("prometheus never saw %s's error rate %s\n%s", runbook, what, sys.obs.prom.LogTail(20))
	return time.Time{}
}

func healthy(v float64) bool  { return v < 0.01 }
func breached(v float64) bool { return v > 0.1 }

func checksKnown(st workflows.ReleaseStatus) bool {
	if st.Phase != workflows.PhaseStabilizing || len(st.Checks) < 2 {
		return false
	}
	for _, c := range st.Checks {
		if c.Value == nil || !c.OK {
			return false
		}
	}
	return true
}

func incidentReport(t *testing.T, id string) string {
	t.Helper()
	code, body, hdr := call(t, http.MethodGet, "/api/v1/releases/"+id+"/report", ciToken, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Equal(t, "text/markdown; charset=utf-8", hdr.Get("Content-Type"))
	return string(body)
}

func markers(t *testing.T, query string) []store.Marker {
	t.Helper()
	code, body, _ := call(t, http.MethodGet, "/api/v1/markers?"+query, ciToken, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var out struct {
		Markers []store.Marker `json:"markers"`
	}
	require.NoError(t, json.Unmarshal(body, &out))
	return out.Markers
}

func markerNames(ms []store.Marker) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Action+":"+m.Stage+":"+m.Outcome)
	}
	return out
}

// annotationsOf are the Grafana annotations drawn for a release.
func annotationsOf(id string) []grafana.FakeAnnotation {
	var out []grafana.FakeAnnotation
	for _, a := range sys.obs.grafana.Annotations() {
		if slices.Contains(a.Tags, "release:"+id) {
			out = append(out, a)
		}
	}
	return out
}

func TestStabilization_HealthyServicePassesTheWindow(t *testing.T) {
	sys.obs.services["steady"].SetErrorRatio(0)
	waitErrorRate(t, "steady", "healthy", healthy)
	res := startRelease(t, ciToken, "steady", "1.0.0")

	st := waitFor(t, res.ID, time.Minute, "the watch showing every check", checksKnown)
	require.Equal(t, "error-rate", st.Checks[0].Name)
	require.Equal(t, "slo burn 30s/5s", st.Checks[1].Name)
	require.Equal(t, "10x over 30s and 5s", st.Checks[1].Limit)
	require.Len(t, st.Baselines, 1)
	require.NotNil(t, st.Baselines[0].Value, "the baseline was measured before production: %+v", st.Baselines[0])

	st = waitFor(t, res.ID, time.Minute, "success", phaseIs(workflows.PhaseSucceeded))
	require.Nil(t, st.Breach)
	require.Nil(t, st.Rollback)
	require.Contains(t, incidentReport(t, res.ID), "Nothing: the release stayed healthy through its stabilization window.")
	saveHistory(t, res.ID)

	require.Equal(t, []string{"deploy:staging:succeeded", "deploy:production:succeeded"}, markerNames(markers(t, "runbook=steady")))
	anns := annotationsOf(res.ID)
	require.Len(t, anns, 2, "one region per stage deploy")
	for _, a := range anns {
		require.Contains(t, a.Tags, "trainyard")
		require.True(t, a.End().After(a.Start()), "each deploy is drawn as a region")
	}
}

func TestStabilization_RaisedErrorRateRollsBackWithinBudgetAndTheReportNamesIt(t *testing.T) {
	svc := sys.obs.services["watched"]
	svc.SetErrorRatio(0)
	t.Cleanup(func() { svc.SetErrorRatio(0) })
	waitErrorRate(t, "watched", "healthy", healthy)
	res := startRelease(t, ciToken, "watched", "1.0.0")
	waitFor(t, res.ID, time.Minute, "the watch showing every check", checksKnown)

	svc.SetErrorRatio(0.5)
	st := waitFor(t, res.ID, time.Minute, "the automatic rollback", phaseIs(workflows.PhaseRolledBack))

	require.NotNil(t, st.Breach)
	require.Equal(t, "error-rate", st.Breach.Check)
	require.Equal(t, workflows.OnBreachRollback, st.Breach.OnBreach)
	require.Contains(t, st.Failure, "stabilization breached: error-rate")
	require.NotNil(t, st.Rollback)
	require.NotNil(t, st.Rollback.EndedAt)
	require.Nil(t, st.Rollback.BudgetExceededAt, "rolled back within its budget")
	require.Less(t, st.Rollback.EndedAt.Sub(st.Rollback.StartedAt), time.Minute)
	require.Equal(t, []string{"runbook/watched"}, st.Rollback.CircuitBreakers)
	require.Equal(t, []string{
		"deploy stg-a", "deploy stg-b", "deploy prod-a", "deploy prod-b",
		"rollback prod-b", "rollback prod-a", "rollback stg-b", "rollback stg-a",
	}, strings.Split(strings.TrimSpace(readFile(t, releaseDir(res.ID)+"/ops.log")), "\n"))

	md := incidentReport(t, res.ID)
	for _, want := range []string{
		"# Incident report: release " + res.ID,
		"**error-rate** (analysis) breached at",
		"The runbook says `onBreach: rollback`: the rollback started at once.",
		"## Metrics around the breach",
		"### error-rate",
		"### slo error ratio over 5s",
		"← breach",
		"Rollback (scope release) started",
		"within its budget of 1m0s",
		"Circuit breakers tripped: runbook/watched.",
		"| deploy | production | production |",
		"### production / prod-a (rolled_back)",
		"deployed 1.0.0 to prod-a",
	} {
		require.Contains(t, md, want, "report:\n%s", md)
	}
	// The kept range of the analysis's query shows the errors that breached it.
	section := md[strings.Index(md, "### error-rate"):]
	var lo, hi float64
	_, err := fmt.Sscanf(section[strings.Index(section, "Lowest"):], "Lowest %g, highest %g", &lo, &hi)
	require.NoError(t, err, section)
	// The range's last step may fall a moment before the sample that breached, while the
	// error rate still climbs: the kept metrics show it rising, not necessarily its peak.
	require.Greater(t, hi, 0.01, "the errors are in the kept metrics:\n%s", section)

	ms := markers(t, "runbook=watched&environment=production")
	require.Equal(t, []string{"deploy:production:succeeded", "rollback:production:succeeded"}, markerNames(ms))
	require.Len(t, annotationsOf(res.ID), 4, "deploys and rollbacks of both stages")
	saveHistory(t, res.ID)

	code, body, _ := call(t, http.MethodGet, "/api/v1/audit?release="+res.ID+"&action=release.breach", ciToken, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), "breached its stabilization window")

	// The circuit breaker holds the runbook's next release until someone with authority
	// clears it.
	svc.SetErrorRatio(0)
	next := startRelease(t, ciToken, "watched", "1.0.1")
	held := waitFor(t, next.ID, time.Minute, "held by the circuit breaker", phaseIs(workflows.PhaseBlocked))
	require.Len(t, held.CircuitBreakers, 1)
	require.Equal(t, res.ID, held.CircuitBreakers[0].TrippedBy)
	clearPath := "/api/v1/circuit-breakers/runbook/watched/clear"
	code, body, _ = call(t, http.MethodPost, clearPath, outsiderToken, map[string]string{"reason": "looks fine to me"})
	require.Equal(t, http.StatusForbidden, code, string(body))
	code, body, _ = call(t, http.MethodPost, clearPath, aliceToken, map[string]string{"reason": "1.0.1 fixes the 500s"})
	require.Equal(t, http.StatusOK, code, string(body))
	waitFor(t, next.ID, time.Minute, "going on after the clear", func(st workflows.ReleaseStatus) bool {
		return st.Phase != workflows.PhaseBlocked && st.Phase != workflows.PhasePending
	})
	code, body, _ = call(t, http.MethodPost, "/api/v1/releases/"+next.ID+"/abort", ciToken, map[string]string{"reason": "test done"})
	require.Equal(t, http.StatusAccepted, code, string(body))
	waitFor(t, next.ID, time.Minute, "aborted", phaseIs(workflows.PhaseAborted))
	code, body, _ = call(t, http.MethodGet, "/api/v1/audit?action=circuit-breaker.clear", ciToken, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"outcome":"denied"`)
	require.Contains(t, string(body), `"outcome":"allowed"`)
}

func TestRollback_OrderedByTheAuthorityOnlyAndAudited(t *testing.T) {
	res := startRelease(t, ciToken, "shop", "7.0.0")
	waitFor(t, res.ID, time.Minute, "waiting for approval", phaseIs(workflows.PhaseAwaitingApproval))
	path := "/api/v1/releases/" + res.ID + "/rollback"

	code, body, _ := call(t, http.MethodPost, path, outsiderToken, map[string]string{"reason": "I do not like it"})
	require.Equal(t, http.StatusForbidden, code, string(body))
	code, body, _ = call(t, http.MethodPost, path, aliceToken, map[string]string{"reason": "staging shows the bug"})
	require.Equal(t, http.StatusAccepted, code, string(body))

	st := waitFor(t, res.ID, time.Minute, "rolled back", phaseIs(workflows.PhaseRolledBack))
	require.Equal(t, "rollback ordered by alice: staging shows the bug", st.Failure)
	require.Equal(t, "alice", st.Rollback.OrderedBy.Actor)
	code, body, _ = call(t, http.MethodGet, "/api/v1/audit?release="+res.ID+"&action=release.rollback", ciToken, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"outcome":"denied"`)
	require.Contains(t, string(body), `"outcome":"allowed"`)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
