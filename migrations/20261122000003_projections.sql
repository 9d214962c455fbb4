-- The projector runtime's bookkeeping and the `read` schema of read models.
--
-- Invariants:
--   * A projection's read-model writes and its checkpoint move in one
--     transaction: `position` is exactly the last event whose effect is in
--     the read models (exactly-once effect). Checkpoints only move forward.
--   * Each projection is owned by one process at a time: a session advisory
--     lock (class 17224, key hashtext(name)) held by the connection that
--     writes its batches; the checkpoint update also compares the old
--     position, so a stale owner can never apply a batch twice.
--   * Every table in `read` belongs to exactly one projection and is
--     rebuilt from the events by it (see ARCHITECTURE.md, "Projections").

CREATE TABLE projection_checkpoints (
    name                text        NOT NULL,
    position            bigint      NOT NULL DEFAULT 0,
    state               text        NOT NULL DEFAULT 'running',
    error               text,
    error_position      bigint,
    owner               text,
    rebuild_requested   boolean     NOT NULL DEFAULT false,
    rebuild_position    bigint,
    rebuild_started_at  timestamptz,
    rebuilt_at          timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projection_checkpoints_pkey PRIMARY KEY (name),
    CONSTRAINT projection_checkpoints_state CHECK (state IN ('running', 'failed')),
    CONSTRAINT projection_checkpoints_position CHECK (position >= 0)
);

COMMENT ON TABLE projection_checkpoints IS
  'One row per projection: how far into the event log its read models reflect, and its health.';
COMMENT ON COLUMN projection_checkpoints.name IS 'Projection name, e.g. tickets.';
COMMENT ON COLUMN projection_checkpoints.position IS 'Global position of the last event applied; written in the same transaction as the read-model changes.';
COMMENT ON COLUMN projection_checkpoints.state IS 'running, or failed: stopped on an event it cannot apply (see error), until resumed or rebuilt.';
COMMENT ON COLUMN projection_checkpoints.error IS 'Why the projection stopped, when state is failed.';
COMMENT ON COLUMN projection_checkpoints.error_position IS 'The event the projection could not apply, when state is failed.';
COMMENT ON COLUMN projection_checkpoints.owner IS 'The process that last took the projection''s lease (host:pid).';
COMMENT ON COLUMN projection_checkpoints.rebuild_requested IS 'A rebuild was asked for and has not completed.';
COMMENT ON COLUMN projection_checkpoints.rebuild_position IS 'While rebuilding: how far the shadow tables have been built.';
COMMENT ON COLUMN projection_checkpoints.rebuild_started_at IS 'When the running rebuild started.';
COMMENT ON COLUMN projection_checkpoints.rebuilt_at IS 'When the last rebuild swapped its tables in.';
COMMENT ON COLUMN projection_checkpoints.updated_at IS 'When the checkpoint last moved or changed state.';

CREATE SCHEMA read;
COMMENT ON SCHEMA read IS
  'Read models kept by the projections from the event log: documented, typed tables for the API and for analysts (role chronicle_analyst). Rebuilt from events at any time.';

-- Analysts: SELECT on the read schema (and later the reporting schema), nothing else.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chronicle_analyst') THEN
        CREATE ROLE chronicle_analyst NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE chronicle_analyst IS
  'Read-only access to the read models (schema read). Grant it to a login role: CREATE ROLE alice LOGIN PASSWORD ''...'' IN ROLE chronicle_analyst.';
GRANT USAGE ON SCHEMA read TO chronicle_analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA read GRANT SELECT ON TABLES TO chronicle_analyst;
