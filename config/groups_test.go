package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGroups_GiveTheirRolesToMembers(t *testing.T) {
	t.Parallel()
	c := Config{
		Principals: []Principal{{Name: "alice", Roles: []string{"approver"}, Token: "alice-token-1"}, {Name: "ci", Roles: []string{"deployer"}, Token: "ci-token-123"}},
		Groups: []Group{
			{Name: "release-managers", Roles: []string{"release-manager", "approver"}, Members: []string{"alice", "carol"}},
			{Name: "sre", Roles: []string{"sre"}, Members: []string{"carol"}},
		},
	}
	ps := c.ResolvedPrincipals()
	require.Equal(t, []string{"approver", "release-manager"}, ps[0].Roles, "own and group roles, once each")
	require.Equal(t, []string{"deployer"}, ps[1].Roles)
	roles := c.PrincipalRoles()
	require.Nil(t, roles["nobody"])
	require.Equal(t, []string{"approver", "release-manager", "sre"}, roles["carol"], "a Slack-only person gets the groups' roles")

	a := NewAuthenticator(ps)
	name, got, ok := a.Lookup("alice-token-1")
	require.True(t, ok)
	require.Equal(t, "alice", name)
	require.Contains(t, got, "release-manager")
}

func TestGroups_AreValidated(t *testing.T) {
	t.Parallel()
	c := Config{Groups: []Group{{Name: "x"}, {Name: "x", Roles: []string{""}}}}
	errs := c.validateGroups()
	require.Len(t, errs, 3)
	require.ErrorContains(t, errs[0], "gives no roles")
	require.ErrorContains(t, errs[1], "used twice")
	require.ErrorContains(t, errs[2], "roles[0] is empty")
}
