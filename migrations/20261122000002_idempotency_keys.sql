-- Answers to commands sent with an Idempotency-Key header, so that a retry
-- with the same key and body gets the first answer and writes nothing new.
-- Kept 24 hours; a key reused with a different body is refused.
CREATE TABLE idempotency_keys (
    tenant_id    text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    -- NULL while the first request is still being handled.
    status       smallint,
    body         jsonb,
    headers      jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (tenant_id, key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

COMMENT ON TABLE idempotency_keys IS
  'First answers to commands sent with an Idempotency-Key, per tenant and key, kept 24 hours.';
COMMENT ON COLUMN idempotency_keys.tenant_id IS 'Tenant of the caller.';
COMMENT ON COLUMN idempotency_keys.key IS 'The Idempotency-Key header as sent.';
COMMENT ON COLUMN idempotency_keys.request_hash IS 'SHA-256 of method, path and body: the same key with another request is refused.';
COMMENT ON COLUMN idempotency_keys.status IS 'HTTP status of the first answer; NULL while it is being handled.';
COMMENT ON COLUMN idempotency_keys.body IS 'JSON body of the first answer.';
COMMENT ON COLUMN idempotency_keys.headers IS 'Headers of the first answer that matter for a replay (ETag, Location).';
COMMENT ON COLUMN idempotency_keys.created_at IS 'When the key was first used; rows older than 24 hours are ignored and replaced.';
