-- +goose Up

-- The release's risk, scored when it starts, kept so later analysis can correlate risk and
-- outcome; components lists what shipped, so a component's history counts across runbooks.
ALTER TABLE releases
    ADD COLUMN risk_score integer,
    ADD COLUMN risk       jsonb,
    ADD COLUMN components text[] NOT NULL DEFAULT '{}';
CREATE INDEX releases_components_idx ON releases USING gin (components);

-- Scan reports CI attaches to a release (SARIF or Trivy JSON), kept as sent: the readiness
-- gate reads them, and an auditor can take the exact report a release was judged on.
CREATE TABLE scan_reports (
    id          bigserial   PRIMARY KEY,
    release_id  text        NOT NULL,
    name        text        NOT NULL,
    format      text        NOT NULL,
    tool        text        NOT NULL DEFAULT '',
    findings    integer     NOT NULL DEFAULT 0,
    body        bytea       NOT NULL,
    uploaded_by text        NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scan_reports_release_idx ON scan_reports (release_id, uploaded_at);

-- One result per readiness gate of a release, with the evidence it was judged on.
CREATE TABLE gate_results (
    release_id  text        NOT NULL,
    gate        text        NOT NULL,
    type        text        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('passed', 'failed', 'error', 'waived', 'skipped')),
    summary     text        NOT NULL DEFAULT '',
    evidence    jsonb       NOT NULL DEFAULT '{}',
    waiver      text        NOT NULL DEFAULT '',
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    PRIMARY KEY (release_id, gate)
);

-- Restore drills, recorded through the API by whoever ran them; a drValidation gate accepts a
-- release only after a recent passed drill of each stateful component it changes.
CREATE TABLE restore_drills (
    id          bigserial   PRIMARY KEY,
    component   text        NOT NULL CHECK (component <> ''),
    outcome     text        NOT NULL CHECK (outcome IN ('passed', 'failed')),
    drilled_at  timestamptz NOT NULL,
    notes       text        NOT NULL DEFAULT '',
    recorded_by text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX restore_drills_component_idx ON restore_drills (component, drilled_at DESC);

-- +goose Down
DROP TABLE restore_drills;
DROP TABLE gate_results;
DROP TABLE scan_reports;
DROP INDEX releases_components_idx;
ALTER TABLE releases DROP COLUMN components, DROP COLUMN risk, DROP COLUMN risk_score;
