-- +goose Up

-- One row per release, written by the release workflow through an activity. seq only grows,
-- so a retried write that arrives late cannot undo a newer one.
CREATE TABLE releases (
    id          text        PRIMARY KEY,
    runbook     text        NOT NULL,
    version     text        NOT NULL,
    requester   text        NOT NULL DEFAULT '',
    phase       text        NOT NULL,
    environment text        NOT NULL DEFAULT '',
    failure     text        NOT NULL DEFAULT '',
    seq         bigint      NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz
);
CREATE INDEX releases_runbook_phase_idx ON releases (runbook, phase);
CREATE INDEX releases_environment_idx ON releases (environment);
CREATE INDEX releases_started_at_idx ON releases (started_at DESC);

-- No foreign key to releases: decisions are written by retried activities, and must not
-- fail because of the order in which writes land.
CREATE TABLE approvals (
    release_id text        NOT NULL,
    gate       text        NOT NULL,
    actor      text        NOT NULL,
    decision   text        NOT NULL,
    comment    text        NOT NULL DEFAULT '',
    decided_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (release_id, gate, actor)
);

-- The audit trail. release_id has no foreign key: a denied attempt may name a release that
-- does not exist, and it must be recorded all the same.
CREATE TABLE audit_events (
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text        NOT NULL,
    roles      text[]      NOT NULL DEFAULT '{}',
    source_ip  text        NOT NULL DEFAULT '',
    user_agent text        NOT NULL DEFAULT '',
    action     text        NOT NULL,
    release_id text,
    outcome    text        NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
    details    jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_release_id_idx ON audit_events (release_id);
CREATE INDEX audit_events_actor_idx ON audit_events (actor);
CREATE INDEX audit_events_at_idx ON audit_events (at);

-- +goose StatementBegin
CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'audit events are evidence; record a correction as a new event';
END;
$$;
-- +goose StatementEnd

-- Per statement, not per row, so that an UPDATE or DELETE fails even when it matches no
-- row: a caller that tries either has a bug we want to hear about.
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- +goose Down
DROP TABLE audit_events;
DROP FUNCTION audit_events_refuse_change();
DROP TABLE approvals;
DROP TABLE releases;
