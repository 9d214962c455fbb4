-- Read models of the approvals projection: approvals, their levels, every
-- decision, and the inbox of pending decisions per approver and role.
-- Every table carries tenant_id; the API always filters by it. Levels are
-- numbered from 0, as in the events and the API.

CREATE TABLE read.approvals (
    approval_id       uuid        NOT NULL,
    tenant_id         text        NOT NULL,
    subject_kind      text        NOT NULL,
    subject_id        uuid        NOT NULL,
    requested_by      uuid        NOT NULL,
    status            text        NOT NULL,
    current_level     integer     NOT NULL,
    level_count       integer     NOT NULL,
    value_minor       bigint,
    value_currency    text,
    requested_at      timestamptz NOT NULL,
    current_due_at    timestamptz,
    escalation_count  integer     NOT NULL DEFAULT 0,
    decided_at        timestamptz,
    outcome           text,
    outcome_by        uuid,
    outcome_comment   text,
    updated_at        timestamptz NOT NULL,
    version           bigint      NOT NULL,
    position          bigint      NOT NULL,
    CONSTRAINT approvals_pkey PRIMARY KEY (approval_id)
);
CREATE INDEX approvals_by_requested ON read.approvals (tenant_id, requested_at DESC, approval_id);
CREATE INDEX approvals_by_status ON read.approvals (tenant_id, status, requested_at DESC);
CREATE INDEX approvals_by_subject ON read.approvals (tenant_id, subject_kind, subject_id);
CREATE INDEX approvals_by_requester ON read.approvals (tenant_id, requested_by, requested_at DESC);
CREATE INDEX approvals_by_updated ON read.approvals (tenant_id, updated_at DESC, approval_id);

COMMENT ON TABLE read.approvals IS 'One row per approval request, as of its last event (projection: approvals).';
COMMENT ON COLUMN read.approvals.approval_id IS 'The approval (its stream id).';
COMMENT ON COLUMN read.approvals.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.approvals.subject_kind IS 'What is being approved: contract or lead_design.';
COMMENT ON COLUMN read.approvals.subject_id IS 'The contract or lead being approved.';
COMMENT ON COLUMN read.approvals.requested_by IS 'User who requested the approval.';
COMMENT ON COLUMN read.approvals.status IS 'open, granted, rejected, changes_requested or cancelled.';
COMMENT ON COLUMN read.approvals.current_level IS 'The level deciding now (from 0); once ended, the last level that was open.';
COMMENT ON COLUMN read.approvals.level_count IS 'How many levels the approval has.';
COMMENT ON COLUMN read.approvals.value_minor IS 'Value of the subject in minor units (cents), when given.';
COMMENT ON COLUMN read.approvals.value_currency IS 'ISO 4217 currency of value_minor.';
COMMENT ON COLUMN read.approvals.requested_at IS 'When the approval was requested (level 0 opened).';
COMMENT ON COLUMN read.approvals.current_due_at IS 'When the current level becomes overdue, if it has a deadline; NULL once ended.';
COMMENT ON COLUMN read.approvals.escalation_count IS 'How many levels were escalated for being overdue.';
COMMENT ON COLUMN read.approvals.decided_at IS 'When the approval ended (granted, rejected, changes requested or cancelled).';
COMMENT ON COLUMN read.approvals.outcome IS 'granted, rejected, changes_requested or cancelled; NULL while open.';
COMMENT ON COLUMN read.approvals.outcome_by IS 'Who rejected, requested changes or cancelled; NULL when granted or open.';
COMMENT ON COLUMN read.approvals.outcome_comment IS 'The rejecting comment, the changes asked for, or the cancellation reason.';
COMMENT ON COLUMN read.approvals.updated_at IS 'Time of the last event.';
COMMENT ON COLUMN read.approvals.version IS 'Stream version after the last event (the ETag of the approval).';
COMMENT ON COLUMN read.approvals.position IS 'Global position of the last event.';

CREATE TABLE read.approval_levels (
    approval_id     uuid        NOT NULL,
    level_no        integer     NOT NULL,
    tenant_id       text        NOT NULL,
    required        integer     NOT NULL,
    approver_users  uuid[]      NOT NULL DEFAULT '{}',
    approver_roles  text[]      NOT NULL DEFAULT '{}',
    status          text        NOT NULL,
    approvals       integer     NOT NULL DEFAULT 0,
    decisions       integer     NOT NULL DEFAULT 0,
    due_secs        bigint,
    due_at          timestamptz,
    started_at      timestamptz,
    completed_at    timestamptz,
    escalated_at    timestamptz,
    CONSTRAINT approval_levels_pkey PRIMARY KEY (approval_id, level_no)
);
CREATE INDEX approval_levels_open_by_due ON read.approval_levels (tenant_id, due_at) WHERE status = 'open';

COMMENT ON TABLE read.approval_levels IS 'The levels of each approval, in order, with what happened at each (projection: approvals).';
COMMENT ON COLUMN read.approval_levels.approval_id IS 'The approval.';
COMMENT ON COLUMN read.approval_levels.level_no IS 'Position of the level, from 0; levels decide in this order.';
COMMENT ON COLUMN read.approval_levels.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.approval_levels.required IS 'How many approvals complete the level (k of n).';
COMMENT ON COLUMN read.approval_levels.approver_users IS 'Users eligible by name.';
COMMENT ON COLUMN read.approval_levels.approver_roles IS 'Roles whose holders are eligible.';
COMMENT ON COLUMN read.approval_levels.status IS 'waiting (not opened yet), open (deciding now), completed, stopped (the approval ended while it was open) or skipped (it ended before this level opened).';
COMMENT ON COLUMN read.approval_levels.approvals IS 'Approvals given at this level.';
COMMENT ON COLUMN read.approval_levels.decisions IS 'Decisions of any kind recorded at this level.';
COMMENT ON COLUMN read.approval_levels.due_secs IS 'Deadline of the level in seconds after it opens, if any.';
COMMENT ON COLUMN read.approval_levels.due_at IS 'When the level becomes overdue (started_at + due_secs); NULL without a deadline or before it opens.';
COMMENT ON COLUMN read.approval_levels.started_at IS 'When the level opened.';
COMMENT ON COLUMN read.approval_levels.completed_at IS 'When the level reached its required approvals.';
COMMENT ON COLUMN read.approval_levels.escalated_at IS 'When the level was escalated for being overdue.';

CREATE TABLE read.approval_decisions (
    approval_id  uuid        NOT NULL,
    level_no     integer     NOT NULL,
    approver_id  uuid        NOT NULL,
    tenant_id    text        NOT NULL,
    decision     text        NOT NULL,
    comment      text,
    at           timestamptz NOT NULL,
    position     bigint      NOT NULL,
    CONSTRAINT approval_decisions_pkey PRIMARY KEY (approval_id, level_no, approver_id)
);
CREATE INDEX approval_decisions_by_approver ON read.approval_decisions (tenant_id, approver_id, at DESC);

COMMENT ON TABLE read.approval_decisions IS 'Every decision recorded on an approval: one per approver per level (projection: approvals).';
COMMENT ON COLUMN read.approval_decisions.approval_id IS 'The approval decided on.';
COMMENT ON COLUMN read.approval_decisions.level_no IS 'The level decided at, from 0.';
COMMENT ON COLUMN read.approval_decisions.approver_id IS 'Who decided.';
COMMENT ON COLUMN read.approval_decisions.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.approval_decisions.decision IS 'approve, reject or request_changes.';
COMMENT ON COLUMN read.approval_decisions.comment IS 'The approver''s comment (required unless approve).';
COMMENT ON COLUMN read.approval_decisions.at IS 'When the decision was made.';
COMMENT ON COLUMN read.approval_decisions.position IS 'Global position of the event that recorded it.';

CREATE TABLE read.approval_inbox (
    approval_id    uuid        NOT NULL,
    level_no       integer     NOT NULL,
    approver_kind  text        NOT NULL,
    approver       text        NOT NULL,
    tenant_id      text        NOT NULL,
    subject_kind   text        NOT NULL,
    subject_id     uuid        NOT NULL,
    requested_by   uuid        NOT NULL,
    since          timestamptz NOT NULL,
    due_at         timestamptz,
    CONSTRAINT approval_inbox_pkey PRIMARY KEY (approval_id, level_no, approver_kind, approver)
);
CREATE INDEX approval_inbox_by_approver ON read.approval_inbox (tenant_id, approver_kind, approver, since);

COMMENT ON TABLE read.approval_inbox IS 'Pending decisions: one row per eligible approver (a user, or a role) of the level each open approval is deciding now. A user''s row goes when they decide; all rows of a level go when it completes or the approval ends. A role''s row stays while the level is open: join approval_decisions to leave out role holders who already decided (projection: approvals).';
COMMENT ON COLUMN read.approval_inbox.approval_id IS 'The approval awaiting a decision.';
COMMENT ON COLUMN read.approval_inbox.level_no IS 'The level deciding now, from 0.';
COMMENT ON COLUMN read.approval_inbox.approver_kind IS 'user (eligible by name) or role (any holder of the role).';
COMMENT ON COLUMN read.approval_inbox.approver IS 'The user id (kind user) or role name (kind role).';
COMMENT ON COLUMN read.approval_inbox.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.approval_inbox.subject_kind IS 'What is being approved: contract or lead_design.';
COMMENT ON COLUMN read.approval_inbox.subject_id IS 'The contract or lead being approved.';
COMMENT ON COLUMN read.approval_inbox.requested_by IS 'User who requested the approval.';
COMMENT ON COLUMN read.approval_inbox.since IS 'When the level opened: how long the decision has been waiting.';
COMMENT ON COLUMN read.approval_inbox.due_at IS 'When the level becomes overdue, if it has a deadline.';
