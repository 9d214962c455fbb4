-- The event store: the single source of truth. Every other table in this
-- database (read models, search position, timers, reports) is derived from
-- `events` and can be rebuilt from it.
--
-- Invariants (see docs/adr/0001-gap-free-global-order.md):
--   * `position` is the global order. It is allocated from a sequence, so
--     concurrent transactions may commit out of order and aborted appends
--     leave permanent gaps; readers use the rule in the ADR to never skip an
--     event that commits late.
--   * (stream_id, stream_version) is unique and dense from 1: optimistic
--     concurrency is this constraint plus the version check in
--     chronicle_append().
--   * Rows are never updated or deleted: triggers below refuse it for every
--     role, and UPDATE/DELETE/TRUNCATE are revoked from PUBLIC.

-- CACHE 1 is required: with per-session caches, positions would no longer
-- be handed out in time order across sessions.
CREATE SEQUENCE events_position_seq AS bigint MINVALUE 1 START 1 CACHE 1 NO CYCLE;

CREATE TABLE events (
    position        bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    tenant_id       text        NOT NULL,
    stream_id       text        NOT NULL,
    stream_type     text        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_type      text        NOT NULL,
    schema_version  smallint    NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (position),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_stream_version_positive CHECK (stream_version >= 1),
    CONSTRAINT events_schema_version_positive CHECK (schema_version >= 1)
);

ALTER SEQUENCE events_position_seq OWNED BY events.position;

COMMENT ON TABLE events IS
  'Every domain event ever recorded, in global order. Append-only: the source of truth from which all read models are rebuilt.';
COMMENT ON COLUMN events.position IS
  'Global position: strictly increasing in commit-safe order for readers; may have gaps where an append was aborted.';
COMMENT ON COLUMN events.event_id IS 'Unique event id (UUIDv7, time-ordered). Retrying an append with the same ids is idempotent.';
COMMENT ON COLUMN events.tenant_id IS 'The tenant that owns the stream; every event of a stream has the same tenant.';
COMMENT ON COLUMN events.stream_id IS 'The stream (one aggregate instance), e.g. a ticket id.';
COMMENT ON COLUMN events.stream_type IS 'The kind of aggregate the stream holds, e.g. ticket, lead, contract.';
COMMENT ON COLUMN events.stream_version IS 'Version of the stream after this event: 1 for its first event, dense and unique per stream.';
COMMENT ON COLUMN events.event_type IS 'Stable event type name, e.g. ticket.opened (see event-schemas/).';
COMMENT ON COLUMN events.schema_version IS 'Version of the event type''s data schema this event was written with.';
COMMENT ON COLUMN events.data IS 'The event''s data, as described by event-schemas/<event_type>/v<schema_version>.schema.json.';
COMMENT ON COLUMN events.metadata IS 'Who and why: actor, correlation_id, causation_id, request_id, source.';
COMMENT ON COLUMN events.recorded_at IS 'When the event was committed to the store (transaction time).';

-- Immutability, enforced for every role including the table owner.
CREATE FUNCTION events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % on events is not allowed', TG_OP
        USING ERRCODE = 'CH002';
END;
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

REVOKE UPDATE, DELETE, TRUNCATE ON events FROM PUBLIC;

-- Appends one batch of events to one stream, in one transaction, with an
-- optimistic concurrency check. Call it as the only statement of its
-- transaction (autocommit); see the ADR for why the order of the first three
-- steps matters.
--
-- p_expected: -2 = any version, -1 = the stream must not exist,
--             n >= 0 = the stream must be exactly at version n (0 = empty).
-- Returns one row: outcome 'ok' with the new stream version and the
-- positions, or 'conflict' / 'tenant_mismatch' / 'type_mismatch' with the
-- current version and nothing written.
CREATE FUNCTION chronicle_append(
    p_tenant          text,
    p_stream_id       text,
    p_stream_type     text,
    p_expected        bigint,
    p_event_ids       uuid[],
    p_event_types     text[],
    p_schema_versions smallint[],
    p_data            jsonb[],
    p_metadata        jsonb[]
) RETURNS TABLE (outcome text, stream_version bigint, positions bigint[])
LANGUAGE plpgsql AS $$
DECLARE
    v_current   bigint;
    v_tenant    text;
    v_type      text;
    v_count     int := cardinality(p_event_ids);
    v_positions bigint[];
BEGIN
    SELECT e.stream_version, e.tenant_id, e.stream_type
      INTO v_current, v_tenant, v_type
      FROM events e
     WHERE e.stream_id = p_stream_id
     ORDER BY e.stream_version DESC
     LIMIT 1;
    IF NOT FOUND THEN
        v_current := 0;
    END IF;

    IF (p_expected = -1 AND v_current <> 0) OR (p_expected >= 0 AND v_current <> p_expected) THEN
        RETURN QUERY SELECT 'conflict'::text, v_current, NULL::bigint[];
        RETURN;
    END IF;
    IF v_current > 0 AND v_tenant <> p_tenant THEN
        RETURN QUERY SELECT 'tenant_mismatch'::text, v_current, NULL::bigint[];
        RETURN;
    END IF;
    IF v_current > 0 AND v_type <> p_stream_type THEN
        RETURN QUERY SELECT 'type_mismatch'::text, v_current, NULL::bigint[];
        RETURN;
    END IF;

    -- 1. Take this transaction's id BEFORE allocating positions: every
    --    position is then allocated by a transaction whose xid is older than
    --    any xid handed out after the allocation (the readers' gap rule).
    PERFORM pg_current_xact_id();
    -- 2. Allocate positions, in stream-version order.
    v_positions := ARRAY(SELECT nextval('events_position_seq') FROM generate_series(1, v_count));
    -- 3. Write.
    INSERT INTO events (position, event_id, tenant_id, stream_id, stream_type, stream_version,
                        event_type, schema_version, data, metadata)
    SELECT v_positions[i], p_event_ids[i], p_tenant, p_stream_id, p_stream_type, v_current + i,
           p_event_types[i], p_schema_versions[i], p_data[i], p_metadata[i]
      FROM generate_series(1, v_count) AS i;

    RETURN QUERY SELECT 'ok'::text, v_current + v_count, v_positions;
END;
$$;

COMMENT ON FUNCTION chronicle_append IS
  'Appends a batch of events to one stream with an expected-version check; the only way the application writes events.';
