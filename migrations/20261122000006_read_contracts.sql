-- Read models of the contracts projection. Every table carries tenant_id;
-- the API always filters by it, and shows a contract only to its owner, to
-- the users and roles it is shared with (shared_with_users,
-- shared_with_roles) and to the roles that see every contract (manager,
-- auditor, analyst, admin). Times named *_at come from the events' own `at`
-- (when it happened), except updated_at (when the last event was recorded).

CREATE TABLE read.contracts (
    contract_id                 uuid        NOT NULL,
    tenant_id                   text        NOT NULL,
    title                       text        NOT NULL,
    parties                     jsonb       NOT NULL DEFAULT '[]',
    counterparty                text        NOT NULL,
    counterparty_contact_name   text,
    counterparty_contact_email  text,
    amount_minor                bigint      NOT NULL,
    currency                    text        NOT NULL,
    start_date                  date        NOT NULL,
    end_date                    date        NOT NULL,
    original_end_date           date        NOT NULL,
    status                      text        NOT NULL,
    owner_id                    uuid        NOT NULL,
    contract_version            integer     NOT NULL,
    body                        text        NOT NULL,
    approval_id                 uuid,
    submitted_at                timestamptz,
    approved_at                 timestamptz,
    rejected_at                 timestamptz,
    rejection_reason            text,
    signatory_name              text,
    signed_by                   uuid,
    signed_at                   timestamptz,
    activated_at                timestamptz,
    renewal_count               integer     NOT NULL DEFAULT 0,
    renewed_at                  timestamptz,
    terminated_at               timestamptz,
    terminated_by               uuid,
    termination_reason          text,
    expired_at                  timestamptz,
    shared_with_users           uuid[]      NOT NULL DEFAULT '{}',
    shared_with_roles           text[]      NOT NULL DEFAULT '{}',
    drafted_at                  timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL,
    version                     bigint      NOT NULL,
    position                    bigint      NOT NULL,
    CONSTRAINT contracts_pkey PRIMARY KEY (contract_id)
);
CREATE INDEX contracts_by_drafted ON read.contracts (tenant_id, drafted_at DESC, contract_id);
CREATE INDEX contracts_by_updated ON read.contracts (tenant_id, updated_at DESC, contract_id);
CREATE INDEX contracts_by_status ON read.contracts (tenant_id, status, end_date);
CREATE INDEX contracts_by_owner ON read.contracts (tenant_id, owner_id, status);
CREATE INDEX contracts_by_counterparty ON read.contracts (tenant_id, counterparty);
CREATE INDEX contracts_by_end ON read.contracts (tenant_id, end_date, contract_id);
CREATE INDEX contracts_by_value ON read.contracts (tenant_id, amount_minor DESC, contract_id);
CREATE INDEX contracts_by_signed ON read.contracts (tenant_id, signed_at) WHERE signed_at IS NOT NULL;
CREATE INDEX contracts_shared_with_users ON read.contracts USING gin (shared_with_users);
CREATE INDEX contracts_shared_with_roles ON read.contracts USING gin (shared_with_roles);

COMMENT ON TABLE read.contracts IS 'One row per contract, as of its last event (projection: contracts).';
COMMENT ON COLUMN read.contracts.contract_id IS 'The contract (its stream id).';
COMMENT ON COLUMN read.contracts.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.contracts.title IS 'Title of the contract.';
COMMENT ON COLUMN read.contracts.parties IS 'The parties: a JSON array of {name, kind (person or organisation), role (supplier, customer, ...)}. Personal data: a party may be a person.';
COMMENT ON COLUMN read.contracts.counterparty IS 'The organisation on the other side.';
COMMENT ON COLUMN read.contracts.counterparty_contact_name IS 'Contact person at the counterparty (personal data).';
COMMENT ON COLUMN read.contracts.counterparty_contact_email IS 'Email of the contact person at the counterparty (personal data).';
COMMENT ON COLUMN read.contracts.amount_minor IS 'Value of the current version in minor units of currency (cents).';
COMMENT ON COLUMN read.contracts.currency IS 'ISO 4217 currency of the value.';
COMMENT ON COLUMN read.contracts.start_date IS 'First day of the term.';
COMMENT ON COLUMN read.contracts.end_date IS 'The day the term ends (after renewals): the contract expires on or after it.';
COMMENT ON COLUMN read.contracts.original_end_date IS 'The end of the term before any renewal.';
COMMENT ON COLUMN read.contracts.status IS 'draft, pending_approval, approved, rejected, signed, active, terminated or expired.';
COMMENT ON COLUMN read.contracts.owner_id IS 'The user who drafted the contract and owns it.';
COMMENT ON COLUMN read.contracts.contract_version IS 'The current contract version: 1 for the draft, one more per amendment (rows in contract_versions).';
COMMENT ON COLUMN read.contracts.body IS 'Text of the current version.';
COMMENT ON COLUMN read.contracts.approval_id IS 'The approval request of the last submission.';
COMMENT ON COLUMN read.contracts.submitted_at IS 'When the contract was last submitted for approval.';
COMMENT ON COLUMN read.contracts.approved_at IS 'When the contract was approved.';
COMMENT ON COLUMN read.contracts.rejected_at IS 'When the last approval was rejected.';
COMMENT ON COLUMN read.contracts.rejection_reason IS 'Why the last approval was rejected; NULL once amended or submitted again.';
COMMENT ON COLUMN read.contracts.signatory_name IS 'Who signed for the counterparty (personal data).';
COMMENT ON COLUMN read.contracts.signed_by IS 'User who recorded the signature.';
COMMENT ON COLUMN read.contracts.signed_at IS 'When the contract was signed.';
COMMENT ON COLUMN read.contracts.activated_at IS 'When the contract became active.';
COMMENT ON COLUMN read.contracts.renewal_count IS 'How many times the term was renewed.';
COMMENT ON COLUMN read.contracts.renewed_at IS 'When the term was last renewed.';
COMMENT ON COLUMN read.contracts.terminated_at IS 'When the contract was terminated.';
COMMENT ON COLUMN read.contracts.terminated_by IS 'User who terminated it.';
COMMENT ON COLUMN read.contracts.termination_reason IS 'Why it was terminated.';
COMMENT ON COLUMN read.contracts.expired_at IS 'When the contract expired at the end of its term.';
COMMENT ON COLUMN read.contracts.shared_with_users IS 'Users the contract is shared with (they may see it).';
COMMENT ON COLUMN read.contracts.shared_with_roles IS 'Roles the contract is shared with (every holder may see it).';
COMMENT ON COLUMN read.contracts.drafted_at IS 'When the contract was drafted.';
COMMENT ON COLUMN read.contracts.updated_at IS 'Time of the last event.';
COMMENT ON COLUMN read.contracts.version IS 'Stream version after the last event (the ETag of the contract).';
COMMENT ON COLUMN read.contracts.position IS 'Global position of the last event.';

CREATE TABLE read.contract_versions (
    contract_id   uuid        NOT NULL,
    version_no    integer     NOT NULL,
    tenant_id     text        NOT NULL,
    title         text        NOT NULL,
    body          text        NOT NULL,
    amount_minor  bigint      NOT NULL,
    currency      text        NOT NULL,
    start_date    date        NOT NULL,
    end_date      date        NOT NULL,
    changed_by    uuid        NOT NULL,
    at            timestamptz NOT NULL,
    position      bigint      NOT NULL,
    CONSTRAINT contract_versions_pkey PRIMARY KEY (contract_id, version_no)
);
CREATE INDEX contract_versions_by_at ON read.contract_versions (tenant_id, at);

COMMENT ON TABLE read.contract_versions IS 'Every version of every contract: the draft (1) and each amendment, as it stood then (projection: contracts).';
COMMENT ON COLUMN read.contract_versions.contract_id IS 'The contract.';
COMMENT ON COLUMN read.contract_versions.version_no IS 'The contract version: 1 for the draft, then one more per amendment.';
COMMENT ON COLUMN read.contract_versions.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.contract_versions.title IS 'Title of the contract.';
COMMENT ON COLUMN read.contract_versions.body IS 'Text of this version.';
COMMENT ON COLUMN read.contract_versions.amount_minor IS 'Value of this version in minor units of currency (cents).';
COMMENT ON COLUMN read.contract_versions.currency IS 'ISO 4217 currency of the value.';
COMMENT ON COLUMN read.contract_versions.start_date IS 'First day of the term in this version.';
COMMENT ON COLUMN read.contract_versions.end_date IS 'End of the term in this version.';
COMMENT ON COLUMN read.contract_versions.changed_by IS 'Who made this version (the owner for the draft).';
COMMENT ON COLUMN read.contract_versions.at IS 'When this version was made.';
COMMENT ON COLUMN read.contract_versions.position IS 'Global position of the event that made it.';
