-- +goose Up

-- One incident per release that breached its stabilization window or was rolled back after a
-- failure: what breached (breach, set once, at the breach) and the release's status (timeline,
-- decisions, command outputs) as it last was, kept after Temporal's retention drops the
-- workflow. Written by retried activities, so every write is an upsert.
CREATE TABLE incidents (
    release_id  text        PRIMARY KEY,
    runbook     text        NOT NULL,
    version     text        NOT NULL DEFAULT '',
    environment text        NOT NULL DEFAULT '',
    breach      jsonb,
    status      jsonb       NOT NULL DEFAULT '{}',
    opened_at   timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_runbook_idx ON incidents (runbook, opened_at DESC);

-- The metrics around a breach: each watched query's range result from before the release to
-- the breach. points is [[unix seconds, "value"], ...] as Prometheus writes them (NaN as
-- "NaN"); error says why a query gave nothing.
CREATE TABLE incident_series (
    release_id text        NOT NULL,
    name       text        NOT NULL,
    query      text        NOT NULL,
    range_from timestamptz NOT NULL,
    range_to   timestamptz NOT NULL,
    step_ms    bigint      NOT NULL CHECK (step_ms > 0),
    points     jsonb       NOT NULL DEFAULT '[]',
    error      text        NOT NULL DEFAULT '',
    PRIMARY KEY (release_id, name)
);

-- Release markers: each stage's deploy and rollback, from start to end, so anomalies can be
-- correlated with releases. grafana_id is the Grafana annotation drawn for it, if any.
CREATE TABLE release_markers (
    id          bigserial   PRIMARY KEY,
    release_id  text        NOT NULL,
    runbook     text        NOT NULL,
    version     text        NOT NULL DEFAULT '',
    environment text        NOT NULL DEFAULT '',
    stage       text        NOT NULL DEFAULT '',
    action      text        NOT NULL CHECK (action IN ('deploy', 'rollback')),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    outcome     text        NOT NULL DEFAULT '',
    grafana_id  bigint,
    UNIQUE (release_id, action, stage)
);
CREATE INDEX release_markers_started_at_idx ON release_markers (started_at DESC);
CREATE INDEX release_markers_runbook_idx ON release_markers (runbook, started_at DESC);
CREATE INDEX release_markers_environment_idx ON release_markers (environment, started_at DESC);

-- Circuit breakers: after a rollback, further releases of a runbook (scope runbook) or into an
-- environment (scope environment) wait until someone holding one of roles clears it. A breaker
-- is tripped once per release (a retried trip changes nothing) and at most one is open per
-- scope and name; cleared ones stay as the record.
CREATE TABLE circuit_breakers (
    id           bigserial   PRIMARY KEY,
    scope        text        NOT NULL CHECK (scope IN ('runbook', 'environment')),
    name         text        NOT NULL CHECK (name <> ''),
    release_id   text        NOT NULL,
    reason       text        NOT NULL DEFAULT '',
    roles        text[]      NOT NULL DEFAULT '{}',
    tripped_at   timestamptz NOT NULL DEFAULT now(),
    cleared_by   text,
    cleared_at   timestamptz,
    clear_reason text        NOT NULL DEFAULT '',
    UNIQUE (scope, name, release_id),
    CHECK ((cleared_at IS NULL) = (cleared_by IS NULL))
);
CREATE UNIQUE INDEX circuit_breakers_open_idx ON circuit_breakers (scope, name) WHERE cleared_at IS NULL;

-- +goose Down
DROP TABLE circuit_breakers;
DROP TABLE release_markers;
DROP TABLE incident_series;
DROP TABLE incidents;
