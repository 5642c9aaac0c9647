package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/freeze"
	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/integrations/servicenow"
	"github.com/trainyard/trainyard/policy"
)

// loadCalendars reads the freeze calendar files. A broken file is reported and its calendar
// stays unusable: a release that names it stops rather than pass an unchecked freeze.
func loadCalendars(cfg config.Config, logger *slog.Logger) *freeze.Catalog {
	cals, err := freeze.LoadCatalog(cfg.Governance.CalendarsDir)
	if err != nil {
		logger.Warn("some freeze calendar files are invalid; releases naming them stop", "dir", cfg.Governance.CalendarsDir, "problems", err.Error())
	}
	return cals
}

// changeClient is the ServiceNow client when servicenow.url is configured, else nil (and a
// runbook that files change requests fails with a message naming the keys to set).
func changeClient(cfg config.Config) servicenow.Client {
	sn := cfg.ServiceNow
	if !sn.Enabled() {
		return nil
	}
	return &servicenow.HTTPClient{BaseURL: sn.URL, User: sn.User, Password: sn.Password, Token: sn.Token,
		HTTP: &http.Client{Timeout: sn.TimeoutOrDefault()}}
}

// newActivities builds the activities every worker process serves, from the config and the
// calendar files already read (the dev command shares them with its server). What a
// worker cannot use (a store on a site worker) is left for the caller to add.
func newActivities(cfg config.Config, logger *slog.Logger, workDir string, cals *freeze.Catalog) (*activities.Activities, error) {
	pols, err := policy.Load(cfg.Governance.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("governance.policyFile %s: %w", cfg.Governance.PolicyFile, err)
	}
	if n := len(pols.Names()); n > 0 {
		logger.Info("release policies loaded", "file", cfg.Governance.PolicyFile, "policies", n)
	}
	loc, err := cfg.Governance.Location()
	if err != nil {
		return nil, err
	}
	a := &activities.Activities{
		Logger: logger, Runner: command.Shell{}, WorkDir: workDir,
		Calendars: cals, Changes: changeClient(cfg),
		Policies: pols, Location: loc, BusinessCalendars: cfg.Governance.BusinessCalendars,
	}
	if p := cfg.Prometheus; p.URL != "" {
		a.Metrics = &prometheus.Client{BaseURL: p.URL, BearerToken: p.Token, HTTP: &http.Client{Timeout: 30 * time.Second}}
	}
	return a, nil
}
