-- Appends with "any version" queue per stream instead of racing.
--
-- chronicle_append(..., p_expected => -2, ...) reads the stream's latest
-- version and appends after it. Two such appends to one stream used to read
-- the same version, and the loser of the unique key had to retry; under
-- contention a writer could lose every retry it was allowed. Now an
-- any-version append first takes a transaction advisory lock on its stream
-- (class 17225, key hashtext(stream_id); the projector leases use class
-- 17224), so concurrent any-version appends to one stream run one after the
-- other and each reads the version its predecessor committed (every
-- statement of a plpgsql function takes a new snapshot under READ
-- COMMITTED). Appends with an exact or no-stream expectation take no lock:
-- for them a concurrent append is a conflict to report, not to wait out.
--
-- The gap rule of docs/adr/0001-gap-free-global-order.md is untouched: the
-- lock is taken before the transaction id, and the id is still taken before
-- the positions.
CREATE OR REPLACE FUNCTION chronicle_append(
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
    IF p_expected = -2 THEN
        PERFORM pg_advisory_xact_lock(17225, hashtext(p_stream_id));
    END IF;

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
  'Appends a batch of events to one stream with an expected-version check; the only way the application writes events. Any-version appends to one stream queue on a transaction advisory lock.';
