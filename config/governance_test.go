package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoad_GovernanceDefaults(t *testing.T) {
	clearEnv(t)
	t.Setenv("TRAINYARD_CALENDARS_DIR", "")
	cfg, err := Load("")
	require.NoError(t, err)
	require.Equal(t, Governance{
		CalendarsDir:       "calendars",
		CalendarAdminRoles: []string{"release-manager"},
		WaiverRoles:        []string{"release-manager"},
		MaxWaiver:          7 * 24 * time.Hour,
	}, cfg.Governance)
}

func TestLoad_GovernanceFromFileThenEnvironment(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, `
governance:
  calendarsDir: /etc/trainyard/calendars
  waiverRoles: [release-manager, sre-lead]
  maxWaiver: 72h
`)
	t.Setenv("TRAINYARD_CALENDARS_DIR", "/srv/calendars")
	cfg, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, "/srv/calendars", cfg.Governance.CalendarsDir, "the environment wins")
	require.Equal(t, []string{"release-manager", "sre-lead"}, cfg.Governance.WaiverRoles)
	require.Equal(t, []string{"release-manager"}, cfg.Governance.CalendarAdminRoles, "unset keys keep their default")
	require.Equal(t, 72*time.Hour, cfg.Governance.MaxWaiver)
}

func TestLoad_GovernanceUnknownKeyIsAnError(t *testing.T) {
	clearEnv(t)
	_, err := Load(writeFile(t, "governance:\n  maxWaivers: 72h\n"))
	require.ErrorContains(t, err, "maxWaivers")
}

func TestValidate_GovernanceNamesTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Governance)
		msg    string
	}{
		{name: "no calendars folder", mutate: func(g *Governance) { g.CalendarsDir = "" }, msg: "governance.calendarsDir (TRAINYARD_CALENDARS_DIR) is empty"},
		{name: "no calendar admins", mutate: func(g *Governance) { g.CalendarAdminRoles = nil }, msg: "governance.calendarAdminRoles is empty"},
		{name: "blank waiver role", mutate: func(g *Governance) { g.WaiverRoles = []string{"release-manager", " "} }, msg: "governance.waiverRoles[1] is empty"},
		{name: "no waiver roles", mutate: func(g *Governance) { g.WaiverRoles = []string{} }, msg: "governance.waiverRoles is empty"},
		{name: "zero max waiver", mutate: func(g *Governance) { g.MaxWaiver = 0 }, msg: "governance.maxWaiver is 0s"},
		{name: "negative max waiver", mutate: func(g *Governance) { g.MaxWaiver = -time.Hour }, msg: "governance.maxWaiver is -1h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.mutate(&c.Governance)
			require.ErrorContains(t, c.Validate(false), tt.msg)
		})
	}
	require.NoError(t, valid().Validate(false))
}
