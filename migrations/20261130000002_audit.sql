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

-- Erasure by crypto-shredding: the data keys of personal data.
--
-- Personal fields of events are stored encrypted (AES-256-GCM) with a key
-- of their subject (a person, or the lead or contract whose contact they
-- are). Erasing a subject sets its keys to NULL: the events keep their
-- ciphertext (and the seal still verifies), and every reader sees the
-- fields as erased.

CREATE TABLE public.subject_keys (
    key_id      uuid        NOT NULL,
    tenant_id   text        NOT NULL,
    subject_id  uuid        NOT NULL,
    key         bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz,
    CONSTRAINT subject_keys_pkey PRIMARY KEY (key_id),
    CONSTRAINT subject_keys_erased CHECK ((key IS NULL) = (erased_at IS NOT NULL))
);
CREATE INDEX subject_keys_live ON public.subject_keys (tenant_id, subject_id, created_at DESC) WHERE key IS NOT NULL;
CREATE INDEX subject_keys_by_subject ON public.subject_keys (tenant_id, subject_id);

COMMENT ON TABLE public.subject_keys IS 'Data keys of personal data, one or more per subject; destroyed (NULL) when the subject is erased.';
COMMENT ON COLUMN public.subject_keys.key_id IS 'Named in each encrypted field of the events.';
COMMENT ON COLUMN public.subject_keys.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN public.subject_keys.subject_id IS 'The person, or the lead or contract whose contact they are.';
COMMENT ON COLUMN public.subject_keys.key IS 'The AES-256 key; NULL once destroyed.';
COMMENT ON COLUMN public.subject_keys.created_at IS 'When the key was made.';
COMMENT ON COLUMN public.subject_keys.erased_at IS 'When it was destroyed (the subject was erased).';
