-- +goose Up

-- Freeze calendars managed through the API. Calendars in files (governance.calendarsDir) are
-- the reviewed source and are not stored here; the API refuses a name a file defines.
-- definition is a freeze.Calendar as JSON, validated before it is written.
CREATE TABLE freeze_calendars (
    name       text        PRIMARY KEY,
    definition jsonb       NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Waivers: a named person's time-limited permission for some releases to pass a freeze
-- calendar, a gate or a policy. A waiver is evidence, like the audit trail: it is never
-- deleted or edited, only revoked (once), and it stops applying at expires_at on its own.
CREATE TABLE waivers (
    id            text        PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('freeze', 'gate', 'policy')),
    target        text        NOT NULL CHECK (target <> ''),
    -- {"runbooks": [...], "environments": [...], "releases": [...]}; an empty list matches any.
    scope         jsonb       NOT NULL DEFAULT '{}',
    reason        text        NOT NULL CHECK (reason <> ''),
    granted_by    text        NOT NULL,
    granted_roles text[]      NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoked_by    text,
    CHECK (expires_at > created_at),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
-- Lookups of the waivers that may let a release through: of a kind and target, not revoked.
CREATE INDEX waivers_kind_target_idx ON waivers (kind, target, expires_at) WHERE revoked_at IS NULL;
CREATE INDEX waivers_created_at_idx ON waivers (created_at DESC);

-- Waiver ids are WVR-<year>-<n>, n counting from 1 each year (WVR-2026-001). A counter per
-- year, taken in the transaction that inserts the waiver, keeps them gapless.
CREATE TABLE waiver_ids (
    year integer PRIMARY KEY,
    last integer NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION waivers_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.revoked_at IS NULL
       AND NEW.revoked_at IS NOT NULL
       AND (NEW.id, NEW.kind, NEW.target, NEW.scope, NEW.reason, NEW.granted_by, NEW.granted_roles, NEW.created_at, NEW.expires_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.kind, OLD.target, OLD.scope, OLD.reason, OLD.granted_by, OLD.granted_roles, OLD.created_at, OLD.expires_at)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'waivers are evidence: % is not allowed (a waiver is only ever revoked, once)', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'revoke the waiver and grant a new one';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER waivers_revoke_only
    BEFORE UPDATE OR DELETE ON waivers
    FOR EACH ROW EXECUTE FUNCTION waivers_refuse_change();

-- +goose Down
DROP TABLE waiver_ids;
DROP TABLE waivers;
DROP FUNCTION waivers_refuse_change();
DROP TABLE freeze_calendars;
