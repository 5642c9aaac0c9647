// Package activities holds the one Activities struct whose methods workflows call. Each method
// is thin: it calls an integration or the store and returns a typed result.
package activities

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/trainyard/trainyard/freeze"
	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/integrations/servicenow"
	"github.com/trainyard/trainyard/policy"
	"github.com/trainyard/trainyard/store"
)

// Store is the part of the store the workflows write progress to. Every method is
// idempotent: a retried activity writes nothing twice.
type Store interface {
	// UpsertRelease records a release's current phase. A write whose Seq is not newer than
	// the stored one changes nothing, so a late retry never moves a release backwards.
	UpsertRelease(ctx context.Context, r store.ReleaseRecord) error
	// RecordDecision stores one approval decision; the same (release, gate, actor) twice is
	// stored once.
	RecordDecision(ctx context.Context, d store.DecisionRecord) error
	// LastSucceededVersion is the version of the runbook's newest succeeded release other
	// than exclude, or "" when there is none.
	LastSucceededVersion(ctx context.Context, runbook, exclude string) (string, error)
	// ReleaseOutcomes counts how the runbook's and the components' last releases ended.
	ReleaseOutcomes(ctx context.Context, runbook string, components []string, exclude string, limit int) (own, comps store.Outcomes, err error)
	// RecordAssessment stores the release's risk and components.
	RecordAssessment(ctx context.Context, releaseID string, score int, risk json.RawMessage, components []string) error
	// Reports returns the scan reports attached to a release.
	Reports(ctx context.Context, releaseID string) ([]store.ScanReport, error)
	// RecordGateResult stores a readiness gate's outcome.
	RecordGateResult(ctx context.Context, g store.GateResult) error
	// LastPassedDrill is a component's newest passed restore drill (ErrNotFound: none).
	LastPassedDrill(ctx context.Context, component string) (store.Drill, error)
	// ActiveWaivers returns the waivers that let a release pass a gate, policy or freeze.
	ActiveWaivers(ctx context.Context, m store.WaiverMatch) ([]store.Waiver, error)
	// AppendAudit writes an audit row.
	AppendAudit(ctx context.Context, e store.AuditEvent) (int64, error)
	// ReservationStatus says whether another holder's reservation keeps a release out of an
	// environment at a time.
	ReservationStatus(ctx context.Context, environment, runbook, releaseID string, at time.Time) (store.ReservationWait, error)
	// RecordPromotions stores what a stage promoted.
	RecordPromotions(ctx context.Context, ps []store.Promotion) error
	// FreezeStatus says whether the runbook's freeze calendars hold a release now, and which
	// waiver lets it through; a waiver's use is audited.
	FreezeStatus(ctx context.Context, files *freeze.Catalog, q store.FreezeQuery) (store.FreezeDecision, error)
}

// Activities holds the clients activities use. A site worker has a Runner and no Store; the
// main worker has a Store.
type Activities struct {
	Store  Store
	Runner command.Runner
	Logger *slog.Logger
	// WorkDir is where a site worker's commands run (a folder per site beneath it).
	WorkDir string
	// HeartbeatEvery is how often a running command reports progress. The SDK throttles
	// heartbeats to the heartbeat timeout, so a short period costs nothing.
	HeartbeatEvery time.Duration
	// Calendars are the freeze calendars from files (calendarsDir); API calendars come from
	// the store.
	Calendars *freeze.Catalog
	// Changes files change requests in ServiceNow (the main worker, when servicenow.url is
	// set); nil otherwise.
	Changes servicenow.Client
	// Policies are the organisation's release policies (governance.policyFile).
	Policies *policy.Set
	// Location is the business's time zone, in which timing risk is judged (UTC when nil).
	Location *time.Location
	// HTTP is the client of synthetic and third-party probes (a default one when nil).
	HTTP *http.Client
	// BusinessCalendars hold every release's production stages (peak seasons), on top of
	// the calendars its runbook names.
	BusinessCalendars []string
	// Metrics answers PromQL queries (prometheus.url); nil when none is configured.
	Metrics prometheus.Querier
	// Temporal is the client the main worker uses to reach environment locks; nil on site
	// workers.
	Temporal client.Client
	// Notifier delivers escalations to people; nil writes them to the audit trail and log only.
	Notifier Notifier
	// Grafana draws release markers as annotations (grafana.url); nil when off.
	Grafana *Annotations
	// Slack shows releases in their runbooks' channels (PublishRelease); nil when Slack is off.
	Slack *Slack
	// Deploy holds the clients cloud targets deploy through (config rollout.*).
	Deploy DeployClients
}

func (a *Activities) location() *time.Location {
	if a.Location != nil {
		return a.Location
	}
	return time.UTC
}
