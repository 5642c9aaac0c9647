package main

import (
	"net/http"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/integrations/grafana"
)

// annotations draws release markers on Grafana when grafana.url is configured; nil otherwise
// (markers are still kept in the store).
func annotations(cfg config.Config) *activities.Annotations {
	g := cfg.Grafana
	if !g.Enabled() {
		return nil
	}
	return &activities.Annotations{
		Client: &grafana.Client{BaseURL: g.URL, Token: g.Token, HTTP: &http.Client{Timeout: g.TimeoutOrDefault()}},
		Tags:   g.TagsOrDefault(),
	}
}
