-- +goose Up

-- Reservations of shared environments for a time slot: while one is active, only releases of
-- its holder (a runbook, or one release) may deploy there; others wait for its end.
CREATE TABLE reservations (
    id           bigserial   PRIMARY KEY,
    environment  text        NOT NULL CHECK (environment <> ''),
    runbook      text        NOT NULL DEFAULT '',
    release_id   text        NOT NULL DEFAULT '',
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    reason       text        NOT NULL CHECK (reason <> ''),
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz,
    cancelled_by text,
    CHECK (ends_at > starts_at),
    CHECK (runbook <> '' OR release_id <> '')
);
CREATE INDEX reservations_environment_idx ON reservations (environment, ends_at) WHERE cancelled_at IS NULL;

-- What each stage of a release promoted: the components by artifact digest. Promotion never
-- rebuilds, so the same digests must appear in every stage of a release.
CREATE TABLE promotions (
    release_id  text        NOT NULL,
    stage       text        NOT NULL,
    environment text        NOT NULL DEFAULT '',
    component   text        NOT NULL,
    version     text        NOT NULL DEFAULT '',
    artifact    text        NOT NULL DEFAULT '',
    promoted_at timestamptz NOT NULL,
    PRIMARY KEY (release_id, stage, component)
);
CREATE INDEX promotions_artifact_idx ON promotions (artifact);

-- +goose Down
DROP TABLE promotions;
DROP TABLE reservations;
