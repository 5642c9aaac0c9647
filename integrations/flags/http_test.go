package flags

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const testToken = "*:*.unleash-admin-test-token"

func newTestClient(t *testing.T) (*Client, *Fake) {
	t.Helper()
	fake := NewFake(testToken)
	fake.AddFlag("checkout", "new-cart")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL, Token: testToken, HTTP: srv.Client()}, fake
}

func env(t *testing.T, fake *Fake, flag, name string) FakeEnvironment {
	t.Helper()
	ff, ok := fake.Flag(flag)
	require.True(t, ok, "flag %s", flag)
	for _, e := range ff.Environments {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("flag %s has no environment %s", flag, name)
	return FakeEnvironment{}
}

func TestSetRollout_CreatesFlexibleRolloutWhenThereIsNone(t *testing.T) {
	t.Parallel()
	c, fake := newTestClient(t)

	require.NoError(t, c.SetRollout(context.Background(), "checkout", "new-cart", "production", 25))

	e := env(t, fake, "new-cart", "production")
	require.False(t, e.Enabled, "setting the rollout does not switch the flag on")
	require.Len(t, e.Strategies, 1)
	require.Equal(t, "flexibleRollout", e.Strategies[0].Name)
	require.Equal(t, map[string]string{"rollout": "25", "stickiness": "default", "groupId": "new-cart"}, e.Strategies[0].Parameters)
	require.Empty(t, env(t, fake, "new-cart", "development").Strategies, "other environments are untouched")
	require.Equal(t, []string{
		"GET /api/admin/projects/checkout/features/new-cart",
		"POST /api/admin/projects/checkout/features/new-cart/environments/production/strategies",
	}, fake.Requests())
}

func TestSetRollout_UpdatesTheRolloutKeepingTheStrategysOtherSettings(t *testing.T) {
	t.Parallel()
	c, fake := newTestClient(t)
	variant := json.RawMessage(`{"name":"blue","weight":1000,"weightType":"variable","stickiness":"userId"}`)
	id := fake.AddStrategy("new-cart", "production", FakeStrategy{
		Name: "flexibleRollout", Title: "gradual",
		Parameters: map[string]string{"rollout": "10", "stickiness": "userId", "groupId": "cart-experiment"},
		Variants:   []json.RawMessage{variant},
	})

	require.NoError(t, c.SetRollout(context.Background(), "checkout", "new-cart", "production", 50))

	e := env(t, fake, "new-cart", "production")
	require.Len(t, e.Strategies, 1)
	s := e.Strategies[0]
	require.Equal(t, id, s.ID)
	require.Equal(t, map[string]string{"rollout": "50", "stickiness": "userId", "groupId": "cart-experiment"}, s.Parameters)
	require.Equal(t, "gradual", s.Title)
	require.Len(t, s.Variants, 1, "PUT would have emptied the variants had they not been sent back")
	require.JSONEq(t, string(variant), string(s.Variants[0]))
	require.Contains(t, fake.Requests(), "PUT /api/admin/projects/checkout/features/new-cart/environments/production/strategies/"+id)
}

func TestSetRollout_LeavesConstrainedAndDisabledStrategiesAlone(t *testing.T) {
	t.Parallel()
	c, fake := newTestClient(t)
	constrained := fake.AddStrategy("new-cart", "production", FakeStrategy{
		Name: "flexibleRollout", Parameters: map[string]string{"rollout": "100", "stickiness": "default", "groupId": "new-cart"},
		Constraints: []json.RawMessage{json.RawMessage(`{"contextName":"userId","operator":"IN","values":["qa"]}`)},
	})
	disabled := fake.AddStrategy("new-cart", "production", FakeStrategy{
		Name: "flexibleRollout", Disabled: true, Parameters: map[string]string{"rollout": "40", "stickiness": "default", "groupId": "new-cart"},
	})

	require.NoError(t, c.SetRollout(context.Background(), "checkout", "new-cart", "production", 5))

	e := env(t, fake, "new-cart", "production")
	require.Len(t, e.Strategies, 3, "a new rollout strategy is added")
	byID := map[string]FakeStrategy{}
	for _, s := range e.Strategies {
		byID[s.ID] = s
	}
	require.Equal(t, "100", byID[constrained].Parameters["rollout"])
	require.Equal(t, "40", byID[disabled].Parameters["rollout"])
	st, err := c.State(context.Background(), "checkout", "new-cart", "production")
	require.NoError(t, err)
	require.Equal(t, 5, st.Percent)
	require.NotContains(t, []string{constrained, disabled}, st.StrategyID)
}

func TestSetRollout_SendsNothingWhenAlreadyAtThePercentage(t *testing.T) {
	t.Parallel()
	c, fake := newTestClient(t)
	require.NoError(t, c.SetRollout(context.Background(), "checkout", "new-cart", "production", 30))
	before := len(fake.Requests())

	require.NoError(t, c.SetRollout(context.Background(), "checkout", "new-cart", "production", 30))

	require.Equal(t, []string{"GET /api/admin/projects/checkout/features/new-cart"}, fake.Requests()[before:])
}

func TestSetRollout_RefusesPercentagesOutsideZeroToHundred(t *testing.T) {
	t.Parallel()
	for _, p := range []int{-1, 101} {
		c, fake := newTestClient(t)
		err := c.SetRollout(context.Background(), "checkout", "new-cart", "production", p)
		require.ErrorIs(t, err, ErrInvalidInput, "%d", p)
		require.Empty(t, fake.Requests(), "nothing reaches unleash")
	}
}

func TestRollout_StepsThroughPercentagesAndTheKillSwitch(t *testing.T) {
	t.Parallel()
	c, fake := newTestClient(t)
	ctx := context.Background()

	require.NoError(t, c.SetRollout(ctx, "checkout", "new-cart", "production", 5))
	require.NoError(t, c.Enable(ctx, "checkout", "new-cart", "production"))
	st, err := c.State(ctx, "checkout", "new-cart", "production")
	require.NoError(t, err)
	require.Equal(t, FlagState{Enabled: true, Percent: 5, StrategyID: st.StrategyID}, st)
	require.NotEmpty(t, st.StrategyID)

	for _, p := range []int{25, 50, 100} {
		require.NoError(t, c.SetRollout(ctx, "checkout", "new-cart", "production", p))
		got, err := c.State(ctx, "checkout", "new-cart", "production")
		require.NoError(t, err)
		require.Equal(t, FlagState{Enabled: true, Percent: p, StrategyID: st.StrategyID}, got, "the same strategy moves")
	}

	require.NoError(t, c.Disable(ctx, "checkout", "new-cart", "production"))
	got, err := c.State(ctx, "checkout", "new-cart", "production")
	require.NoError(t, err)
	require.False(t, got.Enabled)
	require.False(t, env(t, fake, "new-cart", "production").Enabled)
	require.Len(t, env(t, fake, "new-cart", "production").Strategies, 1)
}

func TestEnable_WithoutARolloutGivesEveryoneTheFlag(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t)
	ctx := context.Background()

	require.NoError(t, c.Enable(ctx, "checkout", "new-cart", "production"))

	st, err := c.State(ctx, "checkout", "new-cart", "production")
	require.NoError(t, err)
	require.True(t, st.Enabled)
	require.Equal(t, 100, st.Percent, "unleash adds a 100% flexibleRollout to a flag switched on without strategies")
}

func TestState_OfAFlagWithoutStrategies(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t)

	st, err := c.State(context.Background(), "checkout", "new-cart", "development")
	require.NoError(t, err)
	require.Equal(t, FlagState{}, st)
}

func TestRestore_PutsBackThePercentageAndTheSwitch(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t)
	ctx := context.Background()
	require.NoError(t, c.SetRollout(ctx, "checkout", "new-cart", "production", 20))
	require.NoError(t, c.Enable(ctx, "checkout", "new-cart", "production"))
	prev, err := c.State(ctx, "checkout", "new-cart", "production")
	require.NoError(t, err)

	require.NoError(t, c.SetRollout(ctx, "checkout", "new-cart", "production", 80))
	require.NoError(t, Restore(ctx, c, "checkout", "new-cart", "production", prev))
	got, err := c.State(ctx, "checkout", "new-cart", "production")
	require.NoError(t, err)
	require.Equal(t, prev, got)

	require.NoError(t, Restore(ctx, c, "checkout", "new-cart", "production", FlagState{}))
	got, err = c.State(ctx, "checkout", "new-cart", "production")
	require.NoError(t, err)
	require.False(t, got.Enabled, "a flag that was off with no rollout goes back off")
}

func TestClient_ErrorsSayWhatToFix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		setup    func(c *Client, f *Fake)
		call     func(c *Client) error
		is       error
		contains []string
		retry    bool
	}{
		{
			name:  "wrong token",
			setup: func(c *Client, _ *Fake) { c.Token = "*:*.wrong" },
			call:  func(c *Client) error { return c.Enable(context.Background(), "checkout", "new-cart", "production") },
			is:    ErrUnauthorized, contains: []string{"401", "UnauthorizedError"},
		},
		{
			name:  "bearer prefix",
			setup: func(c *Client, _ *Fake) { c.Token = "Bearer " + testToken },
			call: func(c *Client) error {
				_, err := c.State(context.Background(), "checkout", "new-cart", "production")
				return err
			},
			is: ErrUnauthorized,
		},
		{
			name:  "read-only token writes",
			setup: func(c *Client, f *Fake) { f.ReadOnlyToken = "*:*.read-only"; c.Token = "*:*.read-only" },
			call:  func(c *Client) error { return c.Disable(context.Background(), "checkout", "new-cart", "production") },
			is:    ErrForbidden, contains: []string{"UPDATE_FEATURE_ENVIRONMENT", `"production" environment`},
		},
		{
			name: "unknown flag",
			call: func(c *Client) error {
				return c.SetRollout(context.Background(), "checkout", "old-cart", "production", 10)
			},
			is: ErrNotFound, contains: []string{`flag "old-cart"`, `project "checkout"`, `There's no feature named "old-cart"`},
		},
		{
			name: "flag of another project",
			call: func(c *Client) error { return c.Enable(context.Background(), "payments", "new-cart", "production") },
			is:   ErrNotFound, contains: []string{`in project "checkout"`},
		},
		{
			name: "unknown environment on switch",
			call: func(c *Client) error { return c.Enable(context.Background(), "checkout", "new-cart", "staging") },
			is:   ErrNotFound, contains: []string{"Could not find environment staging"},
		},
		{
			name: "unknown environment on read",
			call: func(c *Client) error {
				_, err := c.State(context.Background(), "checkout", "new-cart", "staging")
				return err
			},
			is: ErrNotFound, contains: []string{`environment "staging"`, "development, production"},
		},
		{
			name: "unleash down",
			setup: func(_ *Client, f *Fake) {
				f.FailNext(http.StatusServiceUnavailable, "InternalError", "database is unavailable")
			},
			call:  func(c *Client) error { return c.Enable(context.Background(), "checkout", "new-cart", "production") },
			retry: true, contains: []string{"503", "database is unavailable"},
		},
		{
			name: "empty flag name",
			call: func(c *Client) error { return c.Enable(context.Background(), "checkout", " ", "production") },
			is:   ErrInvalidInput,
		},
		{
			name:  "no token",
			setup: func(c *Client, _ *Fake) { c.Token = "" },
			call:  func(c *Client) error { return c.Enable(context.Background(), "checkout", "new-cart", "production") },
			is:    ErrInvalidInput, contains: []string{"no unleash api token"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, fake := newTestClient(t)
			if tt.setup != nil {
				tt.setup(c, fake)
			}
			err := tt.call(c)
			require.Error(t, err)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			for _, s := range tt.contains {
				require.Contains(t, err.Error(), s)
			}
			require.Equal(t, tt.retry, IsRetryable(err))
			require.NotContains(t, err.Error(), testToken)
			require.NotContains(t, err.Error(), "read-only")
		})
	}
}

func TestClient_RefusesAnswersThatAreNotTheAdminAPI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{name: "login page", body: "<html><body>Sign in</body></html>"},
		{name: "huge", body: `{"name":"` + strings.Repeat("x", MaxResponseBytes) + `"}`},
		{name: "rollout not a number", body: `{"name":"f","environments":[{"name":"production","enabled":true,"strategies":[{"id":"s","name":"flexibleRollout","parameters":{"rollout":"lots"}}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			c := &Client{BaseURL: srv.URL, Token: testToken}
			_, err := c.State(context.Background(), "p", "f", "production")
			require.ErrorIs(t, err, ErrUnexpectedResponse)
			require.False(t, IsRetryable(err))
		})
	}
}

func TestClient_KeepsTheBasePathOfUnleash(t *testing.T) {
	t.Parallel()
	fake := NewFake(testToken)
	fake.AddFlag("checkout", "new-cart")
	mux := http.NewServeMux()
	mux.Handle("/unleash/", http.StripPrefix("/unleash", fake))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := &Client{BaseURL: srv.URL + "/unleash/", Token: testToken}

	require.NoError(t, c.Enable(context.Background(), "checkout", "new-cart", "production"))
	require.True(t, env(t, fake, "new-cart", "production").Enabled)
}

func TestClient_StopsWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	err := c.Enable(ctx, "checkout", "new-cart", "production")
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
	require.False(t, IsRetryable(err))
}
