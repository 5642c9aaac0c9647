package slack

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/stretchr/testify/require"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func directoryFixture() (*Fake, *clock, DirectoryConfig) {
	f := NewFake()
	f.Emails = map[string]string{
		"U_ALICE": "Alice@Example.com",
		"U_BOB":   "bob@example.com",
		"U_CAROL": "carol@example.com",
		"B_BOT":   "",
	}
	f.Groups = map[string][]string{
		"S_RM":  {"U_ALICE", "U_DAVE"},
		"S_SRE": {"U_ALICE", "U_BOB"},
	}
	c := &clock{now: time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)}
	cfg := DirectoryConfig{
		Users:      map[string]string{"U_DAVE": "dave"},
		Emails:     map[string]string{"BOB@example.com": "bob"},
		Roles:      map[string][]string{"dave": {"approver"}, "bob": {"sre", "deployer"}, "alice@example.com": {"approver"}},
		GroupRoles: map[string]string{"S_RM": "release-manager", "S_SRE": "sre"},
		TTL:        time.Minute,
		Now:        c.Now,
	}
	return f, c, cfg
}

func TestDirectory_Lookup_MapsUsersToPrincipalsAndRoles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		user string
		want Identity
	}{
		{
			user: "U_DAVE", // configured by id: no users.info call needed
			want: Identity{Principal: "dave", SlackUserID: "U_DAVE", Roles: []string{"approver", "release-manager"}},
		},
		{
			user: "U_BOB", // email mapped to a principal; config and group roles merged once
			want: Identity{Principal: "bob", SlackUserID: "U_BOB", Email: "bob@example.com", Roles: []string{"deployer", "sre"}},
		},
		{
			user: "U_ALICE", // unmapped email is the principal, lowercased
			want: Identity{Principal: "alice@example.com", SlackUserID: "U_ALICE", Email: "alice@example.com",
				Roles: []string{"approver", "release-manager", "sre"}},
		},
		{
			user: "U_CAROL", // known, but no roles
			want: Identity{Principal: "carol@example.com", SlackUserID: "U_CAROL", Email: "carol@example.com"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			t.Parallel()
			f, _, cfg := directoryFixture()
			got, err := NewDirectory(f, cfg).Lookup(context.Background(), tt.user)
			require.NoError(t, err)
			require.Equal(t, tt.want.Principal, got.Principal)
			require.Equal(t, tt.want.SlackUserID, got.SlackUserID)
			require.Equal(t, tt.want.Email, got.Email)
			require.ElementsMatch(t, tt.want.Roles, got.Roles)
			require.IsNonDecreasing(t, got.Roles)
		})
	}
}

func TestDirectory_Lookup_ConfiguredUserSkipsUsersInfo(t *testing.T) {
	t.Parallel()
	f, _, cfg := directoryFixture()
	_, err := NewDirectory(f, cfg).Lookup(context.Background(), "U_DAVE")
	require.NoError(t, err)
	require.Zero(t, f.Calls("users.info"))
}

func TestDirectory_Lookup_RefusesUsersItCannotName(t *testing.T) {
	t.Parallel()
	f, _, cfg := directoryFixture()
	d := NewDirectory(f, cfg)
	_, err := d.Lookup(context.Background(), "B_BOT")
	require.ErrorIs(t, err, ErrUnknownUser)
	require.Contains(t, err.Error(), "B_BOT has no email and no configured principal")
	_, err = d.Lookup(context.Background(), "")
	require.ErrorIs(t, err, ErrUnknownUser)
}

func TestDirectory_Lookup_FailsRatherThanDroppingRolesWhenSlackFails(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"users.info", "usergroups.users.list"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			f, _, cfg := directoryFixture()
			f.Err = func(m string) error {
				if m == method {
					return &goslack.RateLimitedError{RetryAfter: time.Minute}
				}
				return nil
			}
			_, err := NewDirectory(f, cfg).Lookup(context.Background(), "U_ALICE")
			var rl *goslack.RateLimitedError
			require.ErrorAs(t, err, &rl)
			require.NotErrorIs(t, err, ErrUnknownUser)
		})
	}
	f, _, cfg := directoryFixture()
	cfg.GroupRoles["S_GONE"] = "auditor"
	_, err := NewDirectory(f, cfg).Lookup(context.Background(), "U_DAVE")
	require.ErrorContains(t, err, "no_such_subteam")
}

func TestDirectory_Lookup_CachesForTheTTL(t *testing.T) {
	t.Parallel()
	f, clk, cfg := directoryFixture()
	d := NewDirectory(f, cfg)
	ctx := context.Background()

	for range 3 {
		_, err := d.Lookup(ctx, "U_ALICE")
		require.NoError(t, err)
	}
	require.Equal(t, 1, f.Calls("users.info"))
	require.Equal(t, 2, f.Calls("usergroups.users.list"), "one call per configured group")

	clk.Add(59 * time.Second)
	_, err := d.Lookup(ctx, "U_BOB")
	require.NoError(t, err)
	require.Equal(t, 2, f.Calls("users.info"), "another user is asked for")
	require.Equal(t, 2, f.Calls("usergroups.users.list"), "groups are still fresh")

	clk.Add(2 * time.Second)
	_, err = d.Lookup(ctx, "U_ALICE")
	require.NoError(t, err)
	require.Equal(t, 3, f.Calls("users.info"), "alice's email expired")
	require.Equal(t, 4, f.Calls("usergroups.users.list"), "the groups expired")
}

func TestDirectory_Forget_SeesANewGroupMemberAtOnce(t *testing.T) {
	t.Parallel()
	f, _, cfg := directoryFixture()
	d := NewDirectory(f, cfg)
	ctx := context.Background()

	id, err := d.Lookup(ctx, "U_CAROL")
	require.NoError(t, err)
	require.Empty(t, id.Roles)

	f.Groups["S_RM"] = append(f.Groups["S_RM"], "U_CAROL")
	id, err = d.Lookup(ctx, "U_CAROL")
	require.NoError(t, err)
	require.Empty(t, id.Roles, "cached until the TTL ends")

	d.Forget("U_CAROL")
	id, err = d.Lookup(ctx, "U_CAROL")
	require.NoError(t, err)
	require.Equal(t, []string{"release-manager"}, id.Roles)
}

func TestDirectory_Lookup_IsSafeConcurrently(t *testing.T) {
	t.Parallel()
	f, _, cfg := directoryFixture()
	d := NewDirectory(f, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		user := []string{"U_ALICE", "U_BOB", "U_DAVE", "U_CAROL"}[i%4]
		wg.Go(func() {
			if _, err := d.Lookup(context.Background(), user); err != nil {
				errs <- err
			}
			if i%10 == 0 {
				d.Forget(user)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestFake_UpdateMessage_RefusesAnUnknownMessage(t *testing.T) {
	t.Parallel()
	f := NewFake()
	ctx := context.Background()
	p, err := f.PostMessage(ctx, Message{Channel: "C1", Text: "first"})
	require.NoError(t, err)
	ts := p.TS
	require.NoError(t, f.UpdateMessage(ctx, "C1", ts, nil, "second"))
	m, ok := f.Message("C1", ts)
	require.True(t, ok)
	require.Equal(t, "second", m.Text)
	require.Equal(t, 1, m.Updates)

	err = f.UpdateMessage(ctx, "C1", "1.2", nil, "x")
	var se goslack.SlackErrorResponse
	require.True(t, errors.As(err, &se))
	require.Equal(t, "message_not_found", se.Err)
}

func TestFake_PostMessage_AnswersWithTheChannelIDAsSlackDoes(t *testing.T) {
	t.Parallel()
	f := NewFake()
	f.Channels["releases"] = "C0REL"
	ctx := context.Background()
	p, err := f.PostMessage(ctx, Message{Channel: "#releases", Text: "parent"})
	require.NoError(t, err)
	require.Equal(t, "C0REL", p.Channel)
	other, err := f.PostMessage(ctx, Message{Channel: "#ops-team", Text: "x"})
	require.NoError(t, err)
	require.Equal(t, "COPSTEAM", other.Channel)

	var se goslack.SlackErrorResponse
	err = f.UpdateMessage(ctx, "#releases", p.TS, nil, "by name")
	require.True(t, errors.As(err, &se))
	require.Equal(t, "channel_not_found", se.Err, "chat.update wants the id")
	require.NoError(t, f.UpdateMessage(ctx, "C0REL", p.TS, nil, "by id"))

	reply, err := f.PostMessage(ctx, Message{Channel: p.Channel, ThreadTS: p.TS, Text: "failed", Broadcast: true})
	require.NoError(t, err)
	m, ok := f.Message(p.Channel, reply.TS)
	require.True(t, ok)
	require.True(t, m.Broadcast)
	require.Equal(t, p.TS, m.ThreadTS)

	_, err = f.PostMessage(ctx, Message{Channel: p.Channel, ThreadTS: "1.1", Text: "orphan"})
	require.True(t, errors.As(err, &se))
	require.Equal(t, "thread_not_found", se.Err)
}
