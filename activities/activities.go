// Package activities holds the one Activities struct whose methods workflows call. Each method
// is thin: it calls an integration or the store and returns a typed result.
package activities

import (
	"context"
	"log/slog"
	"time"

	"github.com/trainyard/trainyard/freeze"
	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/integrations/servicenow"
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
}
