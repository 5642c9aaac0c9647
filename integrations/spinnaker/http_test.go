package spinnaker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	testToken = "gate-oauth-t0ken"
	testUser  = "trainyard@example.com"
)

var deployStages = []FakeStage{
	{Name: "Bake", Type: "bakeManifest"},
	{Name: "Deploy to prod", Type: "deployManifest"},
	{Name: "Smoke test", Type: "runJobManifest"},
}

// newFake serves a Gate requiring a token and X-Spinnaker-User, with pipeline
// "deploy prod" of application shop, and returns a client holding those credentials.
func newFake(t *testing.T, p FakePipeline) (*Fake, *Client) {
	t.Helper()
	f := NewFake()
	t.Cleanup(f.Close)
	f.SetToken(testToken)
	f.RequireHeader("X-Spinnaker-User", testUser)
	if p.Name == "" {
		p.Application, p.Name, p.Stages = "shop", "deploy prod", deployStages
	}
	f.AddPipeline(p)
	return f, f.Client()
}

func requireAPIError(t *testing.T, err error, status int) *APIError {
	t.Helper()
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, status, ae.StatusCode, err.Error())
	return ae
}

func requireNoSecrets(t *testing.T, err error) {
	t.Helper()
	require.NotContains(t, err.Error(), testToken)
	require.NotContains(t, err.Error(), testUser)
}

func TestTrigger_StartsAManualExecutionWithParameters(t *testing.T) {
	t.Parallel()
	f, c := newFake(t, FakePipeline{})

	id, err := c.Trigger(testCtx(t), "shop", "deploy prod", map[string]string{"version": "1.2.3", "release": "release-shop-1.2.3"}, "alice")
	require.NoError(t, err)
	require.Equal(t, []FakeTrigger{{Application: "shop", Pipeline: "deploy prod", ExecutionID: id, Type: "manual", User: "alice",
		Parameters: map[string]string{"version": "1.2.3", "release": "release-shop-1.2.3"}}}, f.Triggers())
	reqs := f.Requests()
	require.Equal(t, "/pipelines/shop/deploy%20prod", reqs[0].Path, "the pipeline name is escaped in the path")

	e, err := c.Execution(testCtx(t), id)
	require.NoError(t, err)
	require.Equal(t, id, e.ID)
	require.Equal(t, "shop", e.Application)
	require.Equal(t, "deploy prod", e.Name)
}

func TestTrigger_ByPipelineIDAndWithoutUserOrParameters(t *testing.T) {
	t.Parallel()
	f, c := newFake(t, FakePipeline{})

	_, err := c.Trigger(testCtx(t), "shop", "cfg-deploy-prod", nil, "")
	require.NoError(t, err)
	tr := f.Triggers()[0]
	require.Equal(t, "deploy prod", tr.Pipeline)
	require.Equal(t, testUser, tr.User, "gate puts the authenticated user")
	require.Empty(t, tr.Parameters)
}

func TestTrigger_Refusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		app      string
		pipeline string
		params   map[string]string
		status   int
		is       error
		message  string
	}{
		{name: "unknown pipeline", app: "shop", pipeline: "deploy staging", status: 404, is: ErrNotFound,
			message: "Pipeline configuration not found (id: deploy staging)"},
		{name: "unknown application", app: "billing", pipeline: "deploy prod", status: 404, is: ErrNotFound, message: "Unable to trigger pipeline"},
		{name: "missing required parameter", app: "shop", pipeline: "deploy prod", params: map[string]string{"other": "x"}, status: 400,
			message: "Required parameter version is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, c := newFake(t, FakePipeline{Application: "shop", Name: "deploy prod", Required: []string{"version"}})
			_, err := c.Trigger(testCtx(t), tt.app, tt.pipeline, tt.params, "alice")
			requireAPIError(t, err, tt.status)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			require.ErrorContains(t, err, tt.message)
			require.ErrorContains(t, err, `trigger spinnaker pipeline "`+tt.pipeline+`"`)
			require.False(t, IsRetryable(err))
			require.Empty(t, f.Triggers())
		})
	}
}

func TestTrigger_RefusesBadNamesBeforeCallingGate(t *testing.T) {
	t.Parallel()
	for _, tt := range [][2]string{{"", "deploy"}, {"shop/../x", "deploy"}, {"shop", ""}, {"shop", "a/b"}, {"shop", ".."}, {"shop", "x\n"}} {
		f, c := newFake(t, FakePipeline{})
		_, err := c.Trigger(testCtx(t), tt[0], tt[1], nil, "")
		require.ErrorIs(t, err, ErrInvalidInput, tt)
		require.Empty(t, f.Requests(), tt)
	}
}

func TestTrigger_RefTheExecutionIsNotNamedInIsUnexpected(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"ref":"/tasks/01J000"}`))
	}))
	t.Cleanup(srv.Close)
	_, err := (&Client{BaseURL: srv.URL}).Trigger(testCtx(t), "shop", "deploy", nil, "")
	require.ErrorIs(t, err, ErrUnexpectedResponse)
	require.False(t, IsRetryable(err))
}

func TestClient_RefusedCredentialsAreUnauthorizedWithoutSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Client)
		status int
	}{
		{name: "wrong token", change: func(c *Client) { c.Token = "expired" }, status: 401},
		{name: "no token", change: func(c *Client) { c.Token = "" }, status: 401},
		{name: "wrong user header", change: func(c *Client) { c.Headers = map[string]string{"X-Spinnaker-User": "mallory"} }, status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, c := newFake(t, FakePipeline{})
			tt.change(c)
			_, err := c.Trigger(testCtx(t), "shop", "deploy prod", nil, "")
			require.ErrorIs(t, err, ErrUnauthorized)
			requireAPIError(t, err, tt.status)
			require.ErrorContains(t, err, "check the gate token")
			requireNoSecrets(t, err)
			require.False(t, IsRetryable(err))
			require.Empty(t, f.Triggers())
		})
	}
}

func TestClient_ServerErrorsSurfaceGatesMessageAndAreRetryable(t *testing.T) {
	t.Parallel()
	f, c := newFake(t, FakePipeline{})
	f.FailNext(http.StatusBadGateway, "Orca is unavailable")

	_, err := c.Trigger(testCtx(t), "shop", "deploy prod", nil, "")
	requireAPIError(t, err, http.StatusBadGateway)
	require.ErrorContains(t, err, "Orca is unavailable")
	require.True(t, IsRetryable(err))
}

func TestClient_AnswersThatAreNotGateJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr error
		want    string
	}{
		{name: "login page", status: 200, body: "<html>Login with Google</html>", wantErr: ErrUnexpectedResponse, want: "login page"},
		{name: "oversized", status: 200, body: `{"id":"` + strings.Repeat("x", MaxResponseBytes) + `"}`, wantErr: ErrUnexpectedResponse, want: "larger than"},
		{name: "no status", status: 200, body: `{"id":"01J1"}`, wantErr: ErrUnexpectedResponse, want: "no id or status"},
		{name: "deck instead of gate", status: 405, body: "<html>Method Not Allowed</html>", want: "not Gate's JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			_, err := (&Client{BaseURL: srv.URL}).Execution(testCtx(t), "01J1")
			require.Error(t, err)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestClient_RefusesBadBaseURLAndIDs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "gate.example.com", "https://user:secret@gate.example.com"} {
		_, err := (&Client{BaseURL: u}).Execution(testCtx(t), "01J1")
		require.ErrorIs(t, err, ErrInvalidInput, u)
		require.NotContains(t, err.Error(), "secret")
	}
	f, c := newFake(t, FakePipeline{})
	for _, id := range []string{"", "../applications", "01J1?x=y"} {
		_, err := c.Execution(testCtx(t), id)
		require.ErrorIs(t, err, ErrInvalidInput, id)
		require.ErrorIs(t, c.Cancel(testCtx(t), id, "x"), ErrInvalidInput, id)
	}
	require.Empty(t, f.Requests())
}

func TestExecution_UnknownIDIsNotFound(t *testing.T) {
	t.Parallel()
	_, c := newFake(t, FakePipeline{})
	_, err := c.Execution(testCtx(t), "01JNOPE")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, "Pipeline not found (id: 01JNOPE)")
}

func TestWait_FollowsTheStagesUntilSucceeded(t *testing.T) {
	t.Parallel()
	_, c := newFake(t, FakePipeline{Application: "shop", Name: "deploy prod", Stages: deployStages, Polls: 4})
	ctx := testCtx(t)
	id, err := c.Trigger(ctx, "shop", "deploy prod", nil, "")
	require.NoError(t, err)

	var current []string
	e, err := c.Wait(ctx, id, time.Millisecond, func(e Execution) {
		s, ok := e.Current()
		require.True(t, ok)
		current = append(current, string(e.Status)+" "+s.Name)
	})
	require.NoError(t, err)
	require.Equal(t, []string{"RUNNING Bake", "RUNNING Deploy to prod", "RUNNING Smoke test", "SUCCEEDED Smoke test"}, current)
	require.Equal(t, StatusSucceeded, e.Status)
	require.Len(t, e.Stages, 3)
	for _, s := range e.Stages {
		require.Equal(t, StatusSucceeded, s.Status, s.Name)
		require.Empty(t, s.Error)
	}
	require.Equal(t, "deployManifest", e.Stages[1].Type)
}

func TestWait_FailedStageIsPipelineFailedErrorNamingIt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		context map[string]any
		message string
	}{
		{name: "exception details errors", message: "Deployment web exceeded its progress deadline"},
		{name: "exception details error only", context: map[string]any{"exception": map[string]any{"details": map[string]any{"error": "Stage timed out after 30m"}}},
			message: "Stage timed out after 30m"},
		{name: "context error", context: map[string]any{"error": "Job failed with exit code 2"}, message: "Job failed with exit code 2"},
		{name: "cloud driver task", context: map[string]any{"kato.tasks": []any{map[string]any{"exception": map[string]any{"message": "quota exceeded"}}}},
			message: "quota exceeded"},
		{name: "nothing said", context: map[string]any{}, message: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, c := newFake(t, FakePipeline{Application: "shop", Name: "deploy prod", Stages: deployStages,
				FailStage: "Deploy to prod", FailMessage: "Deployment web exceeded its progress deadline", FailContext: tt.context})
			ctx := testCtx(t)
			id, err := c.Trigger(ctx, "shop", "deploy prod", nil, "")
			require.NoError(t, err)

			e, err := c.Wait(ctx, id, time.Millisecond, nil)
			var pf *PipelineFailedError
			require.ErrorAs(t, err, &pf)
			require.Equal(t, PipelineFailedError{ExecutionID: id, Status: StatusTerminal, Stage: "Deploy to prod", Message: tt.message}, *pf)
			require.ErrorContains(t, err, `ended TERMINAL at stage "Deploy to prod"`)
			require.False(t, IsRetryable(err))
			require.Equal(t, StatusTerminal, e.Status)
			require.Equal(t, []Status{StatusSucceeded, StatusTerminal, StatusNotStarted},
				[]Status{e.Stages[0].Status, e.Stages[1].Status, e.Stages[2].Status})
		})
	}
}

func TestWait_CanceledExecutionSaysByWhomAndWhy(t *testing.T) {
	t.Parallel()
	f, c := newFake(t, FakePipeline{Application: "shop", Name: "deploy prod", Stages: deployStages, Polls: 100})
	ctx := testCtx(t)
	id, err := c.Trigger(ctx, "shop", "deploy prod", nil, "")
	require.NoError(t, err)
	_, err = c.Execution(ctx, id)
	require.NoError(t, err)

	require.NoError(t, c.Cancel(ctx, id, "release aborted by bob"))
	reqs := f.Requests()
	require.Equal(t, http.MethodPut, reqs[len(reqs)-1].Method)
	require.Equal(t, "/pipelines/"+id+"/cancel", reqs[len(reqs)-1].Path)
	require.Equal(t, "reason=release+aborted+by+bob", reqs[len(reqs)-1].Query)

	e, err := c.Wait(ctx, id, time.Millisecond, nil)
	var pf *PipelineFailedError
	require.ErrorAs(t, err, &pf)
	require.Equal(t, StatusCanceled, pf.Status)
	require.Equal(t, "Bake", pf.Stage, "the stage running when canceled")
	require.Equal(t, "canceled by "+testUser+": release aborted by bob", pf.Message)
	require.Equal(t, testUser, e.CanceledBy)

	require.NoError(t, c.Cancel(ctx, id, "again"), "canceling an ended execution changes nothing")
	e, err = c.Execution(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "release aborted by bob", e.CancellationReason)
}

func TestCancel_UnknownExecutionIsNotFound(t *testing.T) {
	t.Parallel()
	_, c := newFake(t, FakePipeline{})
	err := c.Cancel(testCtx(t), "01JNOPE", "")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestWait_EndsWithTheContext(t *testing.T) {
	t.Parallel()
	_, c := newFake(t, FakePipeline{Application: "shop", Name: "deploy prod", Polls: 1000})
	id, err := c.Trigger(testCtx(t), "shop", "deploy prod", nil, "")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()

	calls := 0
	e, err := c.Wait(ctx, id, time.Millisecond, func(Execution) {
		if calls++; calls == 2 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "RUNNING")
	require.Equal(t, 2, calls)
	require.Equal(t, StatusRunning, e.Status)
	require.False(t, IsRetryable(err))

	_, err = c.Wait(testCtx(t), id, 0, nil)
	require.ErrorIs(t, err, ErrInvalidInput)
}

func TestExecution_FailureNamesTheTopLevelStageOfASyntheticOne(t *testing.T) {
	t.Parallel()
	body := `{"id":"01J1","status":"TERMINAL","stages":[
		{"id":"a","name":"Deploy","type":"deploy","status":"TERMINAL","context":{}},
		{"id":"b","parentStageId":"a","name":"createServerGroup","type":"createServerGroup","status":"SUCCEEDED","context":{}},
		{"id":"c","parentStageId":"b","name":"waitForUpInstances","type":"wait","status":"TERMINAL",
		 "context":{"exception":{"details":{"errors":["  ", "instances did not come up"]}}}}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }))
	t.Cleanup(srv.Close)

	_, err := (&Client{BaseURL: srv.URL}).Wait(testCtx(t), "01J1", time.Millisecond, nil)
	var pf *PipelineFailedError
	require.ErrorAs(t, err, &pf)
	require.Equal(t, "Deploy", pf.Stage)
	require.Equal(t, "waitForUpInstances: instances did not come up", pf.Message)
}

func TestExecution_DecodesOrcasJSON(t *testing.T) {
	t.Parallel()
	var w wireExecution
	require.NoError(t, json.Unmarshal([]byte(`{"id":"01J1","application":"shop","name":"p","status":"RUNNING","canceledBy":null,
		"stages":[{"id":"s","refId":"1","name":"Wait","type":"wait","status":"RUNNING","context":{"error":{"code":7}}}]}`), &w))
	e := w.execution()
	require.Equal(t, Stage{ID: "s", RefID: "1", Name: "Wait", Type: "wait", Status: StatusRunning, Error: `{"code":7}`}, e.Stages[0])
}

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	require.False(t, IsRetryable(nil))
	require.True(t, IsRetryable(errors.New("dial tcp: i/o timeout")))
	require.True(t, IsRetryable(&APIError{StatusCode: 503}))
	require.False(t, IsRetryable(&APIError{StatusCode: 400}))
	require.False(t, IsRetryable(&PipelineFailedError{ExecutionID: "x", Status: StatusTerminal}))
	require.False(t, IsRetryable(context.Canceled))
}

func TestStatus_Complete(t *testing.T) {
	t.Parallel()
	for s, want := range map[Status]bool{
		StatusNotStarted: false, StatusRunning: false, StatusPaused: false, StatusSuspended: false, StatusBuffered: false,
		StatusSucceeded: true, StatusFailedContinue: true, StatusTerminal: true, StatusCanceled: true, StatusStopped: true, StatusSkipped: true,
	} {
		require.Equal(t, want, s.Complete(), s)
	}
}

// testCtx bounds a test's waits, so a wait that never ends fails the test with a reason
// instead of hanging until the test binary's timeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
