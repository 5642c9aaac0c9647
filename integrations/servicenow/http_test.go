package servicenow

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	testUser     = "trainyard"
	testPassword = "s3cret-Pa55word"
	testToken    = "oauth-t0ken-value"
)

// newFake serves a Fake and returns it with a client that holds valid basic credentials.
func newFake(t *testing.T) (*Fake, *HTTPClient) {
	t.Helper()
	fake := NewFake(testUser, testPassword)
	fake.Token = testToken
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, &HTTPClient{BaseURL: srv.URL, User: testUser, Password: testPassword, HTTP: srv.Client()}
}

func input() ChangeInput {
	return ChangeInput{
		CorrelationID:      "release-shop-1.2.3",
		CorrelationDisplay: "Trainyard",
		ShortDescription:   "Release shop 1.2.3",
		Description:        "Components: web, api",
		AssignmentGroup:    "Orders Platform",
		PlannedStart:       time.Date(2026, 3, 1, 9, 30, 0, 0, time.FixedZone("CET", 3600)),
		PlannedEnd:         time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

// requireServiceNowError returns the *Error inside err.
func requireServiceNowError(t *testing.T, err error, status int) *Error {
	t.Helper()
	var se *Error
	require.ErrorAs(t, err, &se)
	require.Equal(t, status, se.StatusCode, err.Error())
	return se
}

func requireNoCredentials(t *testing.T, err error) {
	t.Helper()
	for _, secret := range []string{testPassword, testToken} {
		require.NotContains(t, err.Error(), secret)
	}
}

func TestOpen_FilesNormalChangeWithInputFieldsInStateNew(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)

	ch, err := c.Open(context.Background(), input())
	require.NoError(t, err)
	require.Equal(t, "CHG0030001", ch.Number)
	require.Len(t, ch.SysID, 32)
	require.Equal(t, StateNew, ch.State)
	require.Equal(t, TypeNormal, ch.Type)
	require.Equal(t, "release-shop-1.2.3", ch.CorrelationID)

	recs := fake.Records()
	require.Len(t, recs, 1)
	f := recs[0].Fields
	require.Equal(t, ch.SysID, f["sys_id"])
	require.Equal(t, "Release shop 1.2.3", f["short_description"])
	require.Equal(t, "Components: web, api", f["description"])
	require.Equal(t, "normal", f["type"])
	require.Equal(t, "-5", f["state"])
	require.Equal(t, "release-shop-1.2.3", f["correlation_id"])
	require.Equal(t, "Trainyard", f["correlation_display"])
	require.Equal(t, FakeSysID("group:Orders Platform"), f["assignment_group"], "the group name was resolved to its sys_id")
	require.Equal(t, "2026-03-01 08:30:00", f["start_date"], "dates are sent in UTC")
	require.Equal(t, "2026-03-01 12:00:00", f["end_date"])
}

func TestOpen_TwiceForTheSameCorrelationIDReturnsTheSameChange(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)

	first, err := c.Open(context.Background(), input())
	require.NoError(t, err)
	again, err := c.Open(context.Background(), input())
	require.NoError(t, err)
	require.Equal(t, first, again)
	require.Len(t, fake.Records(), 1, "a retried Open must not file a second change request")

	other := input()
	other.CorrelationID = "release-shop-1.2.4"
	third, err := c.Open(context.Background(), other)
	require.NoError(t, err)
	require.NotEqual(t, first.SysID, third.SysID)
	require.Equal(t, "CHG0030002", third.Number)
}

func TestOpen_AfterTheChangeWasClosedFilesANewOne(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	ctx := context.Background()
	first, err := c.Open(ctx, input())
	require.NoError(t, err)
	require.NoError(t, c.Close(ctx, first.SysID, OutcomeCanceled, "aborted"))

	second, err := c.Open(ctx, input())
	require.NoError(t, err)
	require.NotEqual(t, first.SysID, second.SysID)
	require.Len(t, fake.Records(), 2)
}

func TestOpen_WithTemplateFilesStandardChange(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	in := input()
	in.Template = FakeSysID("template:web deploy")

	ch, err := c.Open(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, TypeStandard, ch.Type)
	require.Equal(t, in.Template, fake.Records()[0].Fields["std_change_producer_version"])
}

func TestOpen_AssignmentGroupBySysIDIsNotLookedUp(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	in := input()
	in.AssignmentGroup = FakeSysID("group:other")

	_, err := c.Open(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, in.AssignmentGroup, fake.Records()[0].Fields["assignment_group"])
	for _, r := range fake.Requests() {
		require.NotContains(t, r, "sys_user_group")
	}
}

func TestOpen_UnknownAssignmentGroupIsInvalidInputAndFilesNothing(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	in := input()
	in.AssignmentGroup = "Nobody"

	_, err := c.Open(context.Background(), in)
	require.ErrorIs(t, err, ErrInvalidInput)
	require.ErrorContains(t, err, `"Nobody"`)
	require.False(t, IsRetryable(err))
	require.Empty(t, fake.Records())
}

func TestOpen_RefusesInvalidInputBeforeCallingServiceNow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*ChangeInput)
		want   string
	}{
		{name: "no correlation id", change: func(in *ChangeInput) { in.CorrelationID = "" }, want: "correlation id is empty"},
		{name: "query separator in correlation id", change: func(in *ChangeInput) { in.CorrelationID = "a^active=false" }, want: "'^'"},
		{name: "long correlation id", change: func(in *ChangeInput) { in.CorrelationID = strings.Repeat("x", 101) }, want: "longer than 100"},
		{name: "no short description", change: func(in *ChangeInput) { in.ShortDescription = " " }, want: "short description is empty"},
		{name: "unknown type", change: func(in *ChangeInput) { in.Type = "urgent" }, want: `type "urgent"`},
		{name: "standard without template", change: func(in *ChangeInput) { in.Type = TypeStandard }, want: "needs a template"},
		{name: "template that is not a sys_id", change: func(in *ChangeInput) { in.Template = "web deploy" }, want: "not a sys_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake, c := newFake(t)
			in := input()
			tt.change(&in)
			_, err := c.Open(context.Background(), in)
			require.ErrorIs(t, err, ErrInvalidInput)
			require.ErrorContains(t, err, tt.want)
			require.False(t, IsRetryable(err))
			require.Empty(t, fake.Requests())
		})
	}
}

func TestNote_AddsWorkNotes(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	ctx := context.Background()
	ch, err := c.Open(ctx, input())
	require.NoError(t, err)

	require.NoError(t, c.Note(ctx, ch.SysID, "Stage staging deployed"))
	require.NoError(t, c.Note(ctx, ch.SysID, "Stage production deployed"))
	require.Equal(t, []string{"Stage staging deployed", "Stage production deployed"}, fake.Records()[0].WorkNotes)
	require.ErrorIs(t, c.Note(ctx, ch.SysID, ""), ErrInvalidInput)
}

func TestMove_WalksTheChangeModelToTheTargetState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		template string
		typ      Type
		patches  int
	}{
		{name: "normal passes assess, authorize and scheduled", typ: TypeNormal, patches: 4},
		{name: "standard passes scheduled", template: FakeSysID("template:web"), patches: 2},
		{name: "emergency passes authorize and scheduled", typ: TypeEmergency, patches: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake, c := newFake(t)
			ctx := context.Background()
			in := input()
			in.Type, in.Template = tt.typ, tt.template
			ch, err := c.Open(ctx, in)
			require.NoError(t, err)

			require.NoError(t, c.Move(ctx, ch.SysID, StateImplement, "Deploying to staging"))
			got, err := c.Get(ctx, ch.SysID)
			require.NoError(t, err)
			require.Equal(t, StateImplement, got.State)
			require.Equal(t, []string{"Deploying to staging"}, fake.Records()[0].WorkNotes, "the note is written once, with the last step")
			require.Equal(t, tt.patches, countPrefix(fake.Requests(), "PATCH "))

			// Moving again to the same state (a retried activity) changes nothing.
			require.NoError(t, c.Move(ctx, ch.SysID, StateImplement, "Deploying to staging"))
			require.Equal(t, tt.patches, countPrefix(fake.Requests(), "PATCH "))
			require.Len(t, fake.Records()[0].WorkNotes, 1)

			require.NoError(t, c.Move(ctx, ch.SysID, StateReview, ""))
			got, err = c.Get(ctx, ch.SysID)
			require.NoError(t, err)
			require.Equal(t, StateReview, got.State)
		})
	}
}

func TestMove_BackwardsOrToAStateTheModelLacksIsInvalidMove(t *testing.T) {
	t.Parallel()
	_, c := newFake(t)
	ctx := context.Background()
	in := input()
	in.Template = FakeSysID("template:web")
	ch, err := c.Open(ctx, in)
	require.NoError(t, err)
	require.NoError(t, c.Move(ctx, ch.SysID, StateImplement, ""))

	err = c.Move(ctx, ch.SysID, StateScheduled, "")
	require.ErrorIs(t, err, ErrInvalidMove)
	require.False(t, IsRetryable(err))
	require.ErrorIs(t, c.Move(ctx, ch.SysID, StateAssess, ""), ErrInvalidMove, "standard changes have no assess state")
	require.ErrorIs(t, c.Move(ctx, ch.SysID, StateClosed, ""), ErrInvalidInput, "closing is Close's job")
}

func TestClose_SetsStateCloseCodeAndNotes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		outcome   Outcome
		state     string
		closeCode string
		workNotes []string
	}{
		{name: "successful", outcome: OutcomeSuccessful, state: "3", closeCode: "successful"},
		{name: "successful with issues", outcome: OutcomeSuccessfulIssues, state: "3", closeCode: "successful_issues"},
		{name: "unsuccessful (rolled back)", outcome: OutcomeUnsuccessful, state: "3", closeCode: "unsuccessful"},
		{name: "canceled", outcome: OutcomeCanceled, state: "4", workNotes: []string{"Release rolled back: error rate 7%"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake, c := newFake(t)
			ctx := context.Background()
			ch, err := c.Open(ctx, input())
			require.NoError(t, err)
			require.NoError(t, c.Move(ctx, ch.SysID, StateImplement, ""))

			require.NoError(t, c.Close(ctx, ch.SysID, tt.outcome, "Release rolled back: error rate 7%"))
			f := fake.Records()[0].Fields
			require.Equal(t, tt.state, f["state"])
			require.Equal(t, tt.closeCode, f["close_code"])
			require.Equal(t, "Release rolled back: error rate 7%", f["close_notes"])
			require.Equal(t, "false", f["active"])
			require.Equal(t, tt.workNotes, fake.Records()[0].WorkNotes)

			// A retried Close with the same outcome succeeds and changes nothing.
			patches := countPrefix(fake.Requests(), "PATCH ")
			require.NoError(t, c.Close(ctx, ch.SysID, tt.outcome, "Release rolled back: error rate 7%"))
			require.Equal(t, patches, countPrefix(fake.Requests(), "PATCH "))
		})
	}
}

func TestClose_FromNewWalksThroughReview(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	ctx := context.Background()
	ch, err := c.Open(ctx, input())
	require.NoError(t, err)

	require.NoError(t, c.Close(ctx, ch.SysID, OutcomeSuccessful, "All stages healthy"))
	got, err := c.Get(ctx, ch.SysID)
	require.NoError(t, err)
	require.Equal(t, StateClosed, got.State)
	require.Equal(t, "successful", got.CloseCode)
	require.Equal(t, 6, countPrefix(fake.Requests(), "PATCH "), "assess, authorize, scheduled, implement, review, closed")
}

func TestClose_AlreadyClosedOtherwiseIsErrClosed(t *testing.T) {
	t.Parallel()
	_, c := newFake(t)
	ctx := context.Background()
	ch, err := c.Open(ctx, input())
	require.NoError(t, err)
	require.NoError(t, c.Close(ctx, ch.SysID, OutcomeSuccessful, "done"))

	err = c.Close(ctx, ch.SysID, OutcomeUnsuccessful, "rolled back")
	require.ErrorIs(t, err, ErrClosed)
	require.False(t, IsRetryable(err))
	require.ErrorIs(t, c.Move(ctx, ch.SysID, StateImplement, ""), ErrClosed)
	require.ErrorIs(t, c.Close(ctx, ch.SysID, "done", "x"), ErrInvalidInput)
	require.ErrorIs(t, c.Close(ctx, ch.SysID, OutcomeSuccessful, ""), ErrInvalidInput)
}

func TestClient_WithoutCredentialsIs401AndNotRetryable(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	c.User, c.Password = "", ""

	_, err := c.Open(context.Background(), input())
	se := requireServiceNowError(t, err, http.StatusUnauthorized)
	require.Equal(t, "User Not Authenticated", se.Message)
	require.Equal(t, "Required to provide Auth information", se.Detail)
	require.False(t, IsRetryable(err))
	require.Empty(t, fake.Records())
}

func TestClient_WrongPasswordIs401WithoutTheCredentialsInTheError(t *testing.T) {
	t.Parallel()
	_, c := newFake(t)
	c.Password = testPassword + "-wrong"

	_, err := c.Get(context.Background(), FakeSysID("x"))
	requireServiceNowError(t, err, http.StatusUnauthorized)
	requireNoCredentials(t, err)
	require.NotContains(t, err.Error(), c.Password)
}

func TestClient_BearerTokenAuthenticates(t *testing.T) {
	t.Parallel()
	_, c := newFake(t)
	c.User, c.Password, c.Token = "", "", testToken

	_, err := c.Open(context.Background(), input())
	require.NoError(t, err)

	c.Token = "not-the-token"
	_, err = c.Open(context.Background(), input())
	requireServiceNowError(t, err, http.StatusUnauthorized)

	c.User, c.Password, c.Token = testUser, testPassword, testToken
	_, err = c.Open(context.Background(), input())
	require.ErrorIs(t, err, ErrInvalidInput, "user and password and a token together are refused")
	requireNoCredentials(t, err)
}

func TestGet_UnknownSysIDIs404NotRetryable(t *testing.T) {
	t.Parallel()
	_, c := newFake(t)

	_, err := c.Get(context.Background(), FakeSysID("missing"))
	se := requireServiceNowError(t, err, http.StatusNotFound)
	require.Equal(t, "No Record found", se.Message)
	require.False(t, IsRetryable(err))
	require.ErrorContains(t, err, "No Record found")

	requireServiceNowError(t, c.Note(context.Background(), FakeSysID("missing"), "x"), http.StatusNotFound)
	_, err = c.Get(context.Background(), "../sys_user")
	require.ErrorIs(t, err, ErrInvalidInput, "a sys_id that is not one never reaches the URL")
}

func TestClient_RateLimitedIsRetryableWithRetryAfter(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	fake.RateLimitOnce(7 * time.Second)

	_, err := c.Open(context.Background(), input())
	se := requireServiceNowError(t, err, http.StatusTooManyRequests)
	require.True(t, se.Retryable())
	require.True(t, IsRetryable(err))
	require.Equal(t, 7*time.Second, se.RetryAfter)
	require.Empty(t, fake.Records())

	// Answered once: the retry goes through.
	_, err = c.Open(context.Background(), input())
	require.NoError(t, err)
}

func TestClient_ServerErrorCarriesServiceNowMessageAndIsRetryable(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	fake.FailOnce(http.StatusInternalServerError, "Transaction cancelled: maximum execution time exceeded", "Check logs for error trace")

	_, err := c.Open(context.Background(), input())
	se := requireServiceNowError(t, err, http.StatusInternalServerError)
	require.True(t, IsRetryable(err))
	require.ErrorContains(t, err, "500 Internal Server Error: Transaction cancelled: maximum execution time exceeded (Check logs for error trace)")
	require.Equal(t, time.Duration(0), se.RetryAfter)
	requireNoCredentials(t, err)
}

func TestClient_RefusedWriteIsNotRetryable(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	fake.FailOnce(http.StatusForbidden, "Operation Failed", "Data Policy Exception: Category is mandatory")

	_, err := c.Open(context.Background(), input())
	requireServiceNowError(t, err, http.StatusForbidden)
	require.False(t, IsRetryable(err))
	require.ErrorContains(t, err, "Operation Failed (Data Policy Exception: Category is mandatory)")
}

func TestClient_ErrorWithoutJSONBodyKeepsTheStatus(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(30*time.Second).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("<html>Instance is restarting</html>"))
	}))
	t.Cleanup(srv.Close)
	c := &HTTPClient{BaseURL: srv.URL, User: testUser, Password: testPassword, HTTP: srv.Client()}

	_, err := c.Get(context.Background(), FakeSysID("x"))
	se := requireServiceNowError(t, err, http.StatusServiceUnavailable)
	require.True(t, IsRetryable(err))
	require.Empty(t, se.Message)
	require.InDelta(t, 30*time.Second, se.RetryAfter, float64(2*time.Second))
}

func TestClient_SuccessThatIsNotTheTableAPIIsUnexpectedResponse(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>Your instance is hibernating</html>"))
	}))
	t.Cleanup(srv.Close)
	c := &HTTPClient{BaseURL: srv.URL, HTTP: srv.Client()}

	_, err := c.Get(context.Background(), FakeSysID("x"))
	require.ErrorIs(t, err, ErrUnexpectedResponse)
	require.ErrorContains(t, err, "text/html")
	require.False(t, IsRetryable(err))
}

func TestClient_LimitsTheResponseBody(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"result":{"sys_id":"` + strings.Repeat("a", 2*MaxResponseBytes) + `"}}`))
	}))
	t.Cleanup(srv.Close)
	c := &HTTPClient{BaseURL: srv.URL, HTTP: srv.Client()}

	_, err := c.Get(context.Background(), FakeSysID("x"))
	require.ErrorIs(t, err, ErrUnexpectedResponse)
	require.ErrorContains(t, err, "larger than")
}

func TestClient_HonoursContextCancellation(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	c := &HTTPClient{BaseURL: srv.URL, User: testUser, Password: testPassword, HTTP: srv.Client()}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Get(ctx, FakeSysID("x"))
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, IsRetryable(err))
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestClient_UnreachableIsRetryableWithoutCredentialsInTheError(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c := &HTTPClient{BaseURL: "http://" + addr, User: testUser, Password: testPassword}

	_, err = c.Get(context.Background(), FakeSysID("x"))
	require.Error(t, err)
	require.True(t, IsRetryable(err))
	requireNoCredentials(t, err)
}

func TestClient_RefusesCredentialsInTheURL(t *testing.T) {
	t.Parallel()
	c := &HTTPClient{BaseURL: "https://trainyard:" + testPassword + "@example.service-now.com"}

	_, err := c.Get(context.Background(), FakeSysID("x"))
	require.ErrorIs(t, err, ErrInvalidInput)
	requireNoCredentials(t, err)
}

func TestRecord_ReadsReferenceFieldsWithLinks(t *testing.T) {
	t.Parallel()
	var rec record
	require.NoError(t, json.Unmarshal([]byte(`{
		"sys_id": "0123456789abcdef0123456789abcdef", "number": "CHG0030007", "state": "-1", "type": "normal",
		"assignment_group": {"link": "https://x/api/now/table/sys_user_group/abc", "value": "abc"},
		"close_code": null, "reopen_count": 0
	}`), &rec))
	require.Equal(t, "abc", string(rec["assignment_group"]))
	require.Equal(t, "0", string(rec["reopen_count"]))
	ch, err := rec.change()
	require.NoError(t, err)
	require.Equal(t, Change{SysID: "0123456789abcdef0123456789abcdef", Number: "CHG0030007", State: StateImplement, Type: TypeNormal}, ch)
}

func TestParseState_NamesEveryState(t *testing.T) {
	t.Parallel()
	for s, name := range stateNames {
		got, err := ParseState(name)
		require.NoError(t, err)
		require.Equal(t, s, got)
		require.Equal(t, name, s.String())
	}
	_, err := ParseState("done")
	require.ErrorIs(t, err, ErrInvalidInput)
}

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{err: &Error{StatusCode: 429}, want: true},
		{err: &Error{StatusCode: 502}, want: true},
		{err: &Error{StatusCode: 400}, want: false},
		{err: &Error{StatusCode: 409}, want: false},
		{err: ErrInvalidMove, want: false},
		{err: context.Canceled, want: false},
		{err: context.DeadlineExceeded, want: true},
		{err: errors.New("connection reset by peer"), want: true},
		{err: nil, want: false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, IsRetryable(tt.err), "%v", tt.err)
	}
}

func countPrefix(ss []string, prefix string) int {
	n := 0
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}
