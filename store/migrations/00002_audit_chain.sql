-- +goose Up

-- Who acted from where, beyond the API token: the Slack user and workspace of an action taken
-- in Slack, and the device a client names in X-Trainyard-Device.
ALTER TABLE audit_events
    ADD COLUMN slack_user text NOT NULL DEFAULT '',
    ADD COLUMN slack_team text NOT NULL DEFAULT '',
    ADD COLUMN device     text NOT NULL DEFAULT '',
    ADD COLUMN prev_hash  text,
    ADD COLUMN hash       text;

-- Listings are ordered by (at, id) and paged after an (at, id): one index serves both, and
-- the time-window filters.
CREATE INDEX audit_events_at_id_idx ON audit_events (at, id);
DROP INDEX audit_events_at_idx;

-- The hash chain. Every row from now on carries hash = sha256(canonical encoding of
-- prev_hash and the row), prev_hash being the hash of the row before it (by id), or '' for
-- the first row of the chain. Rows written before this migration keep NULL: the chain starts
-- at the first row with a hash, and verification counts the rows before it. NOT VALID: the
-- check holds for rows written from now on, and old rows are not rewritten (they cannot be).
ALTER TABLE audit_events
    ADD CONSTRAINT audit_events_chained CHECK (hash IS NOT NULL AND prev_hash IS NOT NULL) NOT VALID;

-- The canonical encoding of a row, which store.AuditCanonical implements in Go; the two must
-- agree byte for byte (store's tests check them against each other). UTF-8 of:
--   "trainyard-audit-v1\n", then for each field, in this order, <n>:<value>\n, where n is the
--   value's length in Unicode code points, in decimal:
--   prev_hash, id (decimal), at (UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ), actor,
--   roles (each role as <n>:<role>, concatenated), source_ip, user_agent, slack_user,
--   slack_team, device, action, release_id, outcome, details (jsonb as text); NULL as ''.
-- +goose StatementBegin
CREATE FUNCTION audit_event_canonical(
    prev_hash text, id bigint, at timestamptz, actor text, roles text[], source_ip text,
    user_agent text, slack_user text, slack_team text, device text, action text,
    release_id text, outcome text, details jsonb
) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    encoded   text := 'trainyard-audit-v1' || E'\n';
    role_list text := '';
    f         text;
BEGIN
    FOREACH f IN ARRAY coalesce(roles, '{}') LOOP
        f := coalesce(f, '');
        role_list := role_list || char_length(f) || ':' || f;
    END LOOP;
    FOREACH f IN ARRAY ARRAY[
        prev_hash,
        id::text,
        to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        actor,
        role_list,
        source_ip,
        user_agent,
        slack_user,
        slack_team,
        device,
        action,
        release_id,
        outcome,
        details::text
    ] LOOP
        f := coalesce(f, '');
        encoded := encoded || char_length(f) || ':' || f || E'\n';
    END LOOP;
    RETURN encoded;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION audit_event_hash(canonical text) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(canonical, 'UTF8')), 'hex')
$$;
-- +goose StatementEnd

-- Chains each new row, whoever inserts it. The advisory lock makes appends take turns until
-- their transaction ends, and the id is drawn under it, so ids follow the chain and a row is
-- committed before the next one reads it as the head. Under REPEATABLE READ or SERIALIZABLE
-- the head read would come from an old snapshot and fork the chain, so those are refused.
-- +goose StatementBegin
CREATE FUNCTION audit_events_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head text;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'audit events must be appended at READ COMMITTED, not %', current_setting('transaction_isolation')
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'an older snapshot would read a stale chain head; append outside this transaction';
    END IF;
    PERFORM pg_advisory_xact_lock(8392846537405330481); -- the bytes of 'tyaudit1': the audit chain's lock
    SELECT a.hash INTO head FROM audit_events a ORDER BY a.id DESC LIMIT 1;
    -- The sequence of the id column (pg_get_serial_sequence('audit_events', 'id')), named so
    -- that no catalog lookup is made on every insert.
    NEW.id := nextval('audit_events_id_seq');
    NEW.prev_hash := coalesce(head, '');
    NEW.hash := audit_event_hash(audit_event_canonical(
        NEW.prev_hash, NEW.id, NEW.at, NEW.actor, NEW.roles, NEW.source_ip, NEW.user_agent,
        NEW.slack_user, NEW.slack_team, NEW.device, NEW.action, NEW.release_id, NEW.outcome, NEW.details));
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

-- The trigger draws the id under the lock; a default drawn before it would let ids and the
-- chain disagree.
ALTER TABLE audit_events ALTER COLUMN id DROP DEFAULT;

CREATE TRIGGER audit_events_chain
    BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_chain();

-- +goose Down
CREATE INDEX audit_events_at_idx ON audit_events (at);
DROP INDEX audit_events_at_id_idx;
DROP TRIGGER audit_events_chain ON audit_events;
ALTER TABLE audit_events ALTER COLUMN id SET DEFAULT nextval('audit_events_id_seq'::regclass);
DROP FUNCTION audit_events_chain();
DROP FUNCTION audit_event_hash(text);
DROP FUNCTION audit_event_canonical(text, bigint, timestamptz, text, text[], text, text, text, text, text, text, text, text, jsonb);
ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_chained,
    DROP COLUMN hash,
    DROP COLUMN prev_hash,
    DROP COLUMN device,
    DROP COLUMN slack_team,
    DROP COLUMN slack_user;
