-- Tamper evidence: the seal over the event log (projection: seal).
--
-- Every event is hashed in global order: its digest is the SHA-256 of its
-- canonical bytes (envelope, data and metadata as stored), and the chain is
-- SHA-256(previous chain || digest), from 32 zero bytes. Every 1,000 events
-- or 10 seconds the seal writes a checkpoint signed with the deployment's
-- Ed25519 key (`<data dir>/audit-signing-key`). `chronicle audit verify`
-- recomputes both from the events. These tables are never rebuilt.

CREATE TABLE public.audit_seal (
    position  bigint NOT NULL,
    n         bigint NOT NULL,
    digest    bytea  NOT NULL,
    chain     bytea  NOT NULL,
    CONSTRAINT audit_seal_pkey PRIMARY KEY (position)
);

COMMENT ON TABLE public.audit_seal IS 'One row per sealed event, in global order (projection: seal).';
COMMENT ON COLUMN public.audit_seal.position IS 'The event''s global position.';
COMMENT ON COLUMN public.audit_seal.n IS 'How many events are sealed up to and including this one.';
COMMENT ON COLUMN public.audit_seal.digest IS 'SHA-256 of the event''s canonical bytes.';
COMMENT ON COLUMN public.audit_seal.chain IS 'SHA-256 of the previous row''s chain and this digest.';

CREATE TABLE public.audit_checkpoints (
    position   bigint      NOT NULL,
    events     bigint      NOT NULL,
    chain      bytea       NOT NULL,
    sealed_at  timestamptz NOT NULL,
    key_id     text        NOT NULL,
    signature  bytea       NOT NULL,
    CONSTRAINT audit_checkpoints_pkey PRIMARY KEY (position)
);

COMMENT ON TABLE public.audit_checkpoints IS 'Signed checkpoints of the seal: auditors copy them (GET /api/v1/audit/checkpoints) and verify the log against them.';
COMMENT ON COLUMN public.audit_checkpoints.position IS 'The last event position the checkpoint covers.';
COMMENT ON COLUMN public.audit_checkpoints.events IS 'How many events are sealed up to it.';
COMMENT ON COLUMN public.audit_checkpoints.chain IS 'The seal''s chain at that position.';
COMMENT ON COLUMN public.audit_checkpoints.sealed_at IS 'When the checkpoint was written.';
COMMENT ON COLUMN public.audit_checkpoints.key_id IS 'The signing key: the first 16 hex characters of the SHA-256 of its public key.';
COMMENT ON COLUMN public.audit_checkpoints.signature IS 'Ed25519 signature of "chronicle-seal-v1|<position>|<events>|<chain hex>|<sealed_at in microseconds since the epoch>".';
