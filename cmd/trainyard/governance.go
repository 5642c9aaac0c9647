package main

import (
	"log/slog"
	"net/http"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/freeze"
	"github.com/trainyard/trainyard/integrations/servicenow"
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
