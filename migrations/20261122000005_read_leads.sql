-- Read models of the leads projection. Every table carries tenant_id; the
-- API always filters by it. Times named *_at come from the events' own `at`
-- (when it happened), except updated_at (when the last event was recorded).

CREATE TABLE read.leads (
    lead_id                     uuid        NOT NULL,
    tenant_id                   text        NOT NULL,
    company                     text        NOT NULL,
    contact_name                text,
    contact_email               text,
    contact_phone               text,
    site_address                text,
    service                     text        NOT NULL,
    bandwidth_mbps              bigint      NOT NULL,
    amount_minor                bigint      NOT NULL,
    currency                    text        NOT NULL,
    source                      text        NOT NULL,
    score                       smallint,
    owner_id                    uuid,
    owner_assigned_at           timestamptz,
    captured_by                 uuid        NOT NULL,
    stage                       text        NOT NULL,
    stage_entered_at            timestamptz NOT NULL,
    stage_count                 integer     NOT NULL DEFAULT 1,
    feasible                    boolean,
    serviceability_notes        text,
    serviceability_checked_at   timestamptz,
    design_version              integer     NOT NULL DEFAULT 0,
    design_submitted_at         timestamptz,
    design_comment_count        integer     NOT NULL DEFAULT 0,
    approval_state              text        NOT NULL DEFAULT 'none',
    approval_id                 uuid,
    approved_design_version     integer,
    design_approved_at          timestamptz,
    task_count                  integer     NOT NULL DEFAULT 0,
    tasks_completed             integer     NOT NULL DEFAULT 0,
    implementation_completed_at timestamptz,
    test_count                  integer     NOT NULL DEFAULT 0,
    tests_passed                integer     NOT NULL DEFAULT 0,
    defect_count                integer     NOT NULL DEFAULT 0,
    open_defects                integer     NOT NULL DEFAULT 0,
    testing_passed_at           timestamptz,
    handed_over_at              timestamptz,
    handover_notes              text,
    outcome                     text,
    close_reason                text,
    closed_at                   timestamptz,
    captured_at                 timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL,
    version                     bigint      NOT NULL,
    position                    bigint      NOT NULL,
    CONSTRAINT leads_pkey PRIMARY KEY (lead_id)
);
CREATE INDEX leads_by_captured ON read.leads (tenant_id, captured_at DESC, lead_id);
CREATE INDEX leads_by_updated ON read.leads (tenant_id, updated_at DESC, lead_id);
CREATE INDEX leads_by_stage ON read.leads (tenant_id, stage, captured_at DESC);
CREATE INDEX leads_by_owner ON read.leads (tenant_id, owner_id, stage) WHERE owner_id IS NOT NULL;
CREATE INDEX leads_by_source ON read.leads (tenant_id, source, captured_at DESC);
CREATE INDEX leads_by_service ON read.leads (tenant_id, service, captured_at DESC);
CREATE INDEX leads_by_value ON read.leads (tenant_id, amount_minor DESC, lead_id);
CREATE INDEX leads_by_company ON read.leads (tenant_id, company, lead_id);
CREATE INDEX leads_by_closed ON read.leads (tenant_id, closed_at, outcome) WHERE closed_at IS NOT NULL;

COMMENT ON TABLE read.leads IS 'One row per sales lead, as of its last event (projection: leads).';
COMMENT ON COLUMN read.leads.lead_id IS 'The lead (its stream id).';
COMMENT ON COLUMN read.leads.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.leads.company IS 'The prospective customer''s company.';
COMMENT ON COLUMN read.leads.contact_name IS 'Contact person''s name (personal data).';
COMMENT ON COLUMN read.leads.contact_email IS 'Contact person''s email (personal data).';
COMMENT ON COLUMN read.leads.contact_phone IS 'Contact person''s phone as given, free format (personal data).';
COMMENT ON COLUMN read.leads.site_address IS 'Address of the site to connect (personal data).';
COMMENT ON COLUMN read.leads.service IS 'Requested service, e.g. Dedicated Internet Access.';
COMMENT ON COLUMN read.leads.bandwidth_mbps IS 'Requested bandwidth in Mbps.';
COMMENT ON COLUMN read.leads.amount_minor IS 'Estimated value in minor units of currency (cents).';
COMMENT ON COLUMN read.leads.currency IS 'ISO 4217 currency of the estimated value.';
COMMENT ON COLUMN read.leads.source IS 'Where the lead came from, e.g. web form, partner referral.';
COMMENT ON COLUMN read.leads.score IS 'Qualification score 0-100 (the latest); NULL until qualified.';
COMMENT ON COLUMN read.leads.owner_id IS 'The salesperson who owns the lead; NULL until one is assigned.';
COMMENT ON COLUMN read.leads.owner_assigned_at IS 'When the current owner was assigned.';
COMMENT ON COLUMN read.leads.captured_by IS 'User who captured the lead.';
COMMENT ON COLUMN read.leads.stage IS 'captured, qualified, serviceability_checked, design, design_approval, implementation, testing, support or closed.';
COMMENT ON COLUMN read.leads.stage_entered_at IS 'When the lead entered its current stage.';
COMMENT ON COLUMN read.leads.stage_count IS 'Stages entered so far (rows in lead_stages; the current one has seq = stage_count).';
COMMENT ON COLUMN read.leads.feasible IS 'Serviceability result: true if the site can be served; NULL until checked.';
COMMENT ON COLUMN read.leads.serviceability_notes IS 'Notes of the serviceability check.';
COMMENT ON COLUMN read.leads.serviceability_checked_at IS 'When serviceability was checked.';
COMMENT ON COLUMN read.leads.design_version IS 'Latest design version submitted (rows in lead_designs); 0 before the first.';
COMMENT ON COLUMN read.leads.design_submitted_at IS 'When the latest design version was submitted.';
COMMENT ON COLUMN read.leads.design_comment_count IS 'Comments on all design versions (rows in lead_design_comments).';
COMMENT ON COLUMN read.leads.approval_state IS 'Approval of the latest design: none (not requested), pending, approved, rejected, or cancelled (the lead closed while it was pending).';
COMMENT ON COLUMN read.leads.approval_id IS 'The approval request of the latest design, once requested.';
COMMENT ON COLUMN read.leads.approved_design_version IS 'The design version that was approved; NULL until one is.';
COMMENT ON COLUMN read.leads.design_approved_at IS 'When the design was approved.';
COMMENT ON COLUMN read.leads.task_count IS 'Implementation tasks added (rows in lead_tasks).';
COMMENT ON COLUMN read.leads.tasks_completed IS 'Implementation tasks completed.';
COMMENT ON COLUMN read.leads.implementation_completed_at IS 'When implementation was completed (the lead went to testing).';
COMMENT ON COLUMN read.leads.test_count IS 'Activation tests recorded (rows in lead_activation_tests).';
COMMENT ON COLUMN read.leads.tests_passed IS 'Activation tests that passed.';
COMMENT ON COLUMN read.leads.defect_count IS 'Defects raised (rows in lead_defects).';
COMMENT ON COLUMN read.leads.open_defects IS 'Defects raised and not yet resolved.';
COMMENT ON COLUMN read.leads.testing_passed_at IS 'When testing was passed.';
COMMENT ON COLUMN read.leads.handed_over_at IS 'When the service was handed over to support.';
COMMENT ON COLUMN read.leads.handover_notes IS 'Notes of the handover to support.';
COMMENT ON COLUMN read.leads.outcome IS 'How the lead ended: won, lost or cancelled; NULL while open.';
COMMENT ON COLUMN read.leads.close_reason IS 'Reason given on closing.';
COMMENT ON COLUMN read.leads.closed_at IS 'When the lead was closed.';
COMMENT ON COLUMN read.leads.captured_at IS 'When the lead was captured.';
COMMENT ON COLUMN read.leads.updated_at IS 'Time of the last event.';
COMMENT ON COLUMN read.leads.version IS 'Stream version after the last event (the ETag of the lead).';
COMMENT ON COLUMN read.leads.position IS 'Global position of the last event.';

CREATE TABLE read.lead_stages (
    lead_id           uuid        NOT NULL,
    seq               integer     NOT NULL,
    tenant_id         text        NOT NULL,
    stage             text        NOT NULL,
    entered_at        timestamptz NOT NULL,
    left_at           timestamptz,
    next_stage        text,
    duration          interval GENERATED ALWAYS AS (left_at - entered_at) STORED,
    duration_seconds  numeric GENERATED ALWAYS AS (extract(epoch FROM left_at - entered_at)) STORED,
    CONSTRAINT lead_stages_pkey PRIMARY KEY (lead_id, seq)
);
CREATE INDEX lead_stages_by_stage ON read.lead_stages (tenant_id, stage, entered_at);
CREATE INDEX lead_stages_open ON read.lead_stages (lead_id) WHERE left_at IS NULL;

COMMENT ON TABLE read.lead_stages IS 'A lead''s time in each stage: one row per stage entered, in order (projection: leads). A stage entered twice (design, after a rejected design) has two rows.';
COMMENT ON COLUMN read.lead_stages.lead_id IS 'The lead.';
COMMENT ON COLUMN read.lead_stages.seq IS '1 for the first stage (captured), then 2, ...';
COMMENT ON COLUMN read.lead_stages.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.lead_stages.stage IS 'The stage (see leads.stage).';
COMMENT ON COLUMN read.lead_stages.entered_at IS 'When the lead entered the stage.';
COMMENT ON COLUMN read.lead_stages.left_at IS 'When the lead left the stage; NULL while it is in it (and for closed).';
COMMENT ON COLUMN read.lead_stages.next_stage IS 'The stage the lead went to; NULL while it is in this one.';
COMMENT ON COLUMN read.lead_stages.duration IS 'Time spent in the stage (left_at - entered_at); NULL while in it.';
COMMENT ON COLUMN read.lead_stages.duration_seconds IS 'The same duration in seconds.';

CREATE TABLE read.lead_designs (
    lead_id                uuid        NOT NULL,
    design_version         integer     NOT NULL,
    tenant_id              text        NOT NULL,
    summary                text        NOT NULL,
    specification          text        NOT NULL,
    documents              jsonb       NOT NULL DEFAULT '[]',
    submitted_by           uuid        NOT NULL,
    submitted_at           timestamptz NOT NULL,
    approval_id            uuid,
    approval_requested_by  uuid,
    approval_requested_at  timestamptz,
    decision               text,
    decided_at             timestamptz,
    decision_reason        text,
    comment_count          integer     NOT NULL DEFAULT 0,
    position               bigint      NOT NULL,
    CONSTRAINT lead_designs_pkey PRIMARY KEY (lead_id, design_version)
);
CREATE INDEX lead_designs_by_submitted ON read.lead_designs (tenant_id, submitted_at);
CREATE INDEX lead_designs_by_approval ON read.lead_designs (approval_id) WHERE approval_id IS NOT NULL;

COMMENT ON TABLE read.lead_designs IS 'Design versions of leads: one row per submission (projection: leads).';
COMMENT ON COLUMN read.lead_designs.lead_id IS 'The lead.';
COMMENT ON COLUMN read.lead_designs.design_version IS 'The design version: 1 for the first submission, then 2, ...';
COMMENT ON COLUMN read.lead_designs.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.lead_designs.summary IS 'One-line summary of the design.';
COMMENT ON COLUMN read.lead_designs.specification IS 'The design specification.';
COMMENT ON COLUMN read.lead_designs.documents IS 'Documents of the design: a JSON array of {document_id, name} (files kept by the file service).';
COMMENT ON COLUMN read.lead_designs.submitted_by IS 'User who submitted the version.';
COMMENT ON COLUMN read.lead_designs.submitted_at IS 'When the version was submitted.';
COMMENT ON COLUMN read.lead_designs.approval_id IS 'The approval request for this version; NULL if approval was never requested.';
COMMENT ON COLUMN read.lead_designs.approval_requested_by IS 'User who requested the approval.';
COMMENT ON COLUMN read.lead_designs.approval_requested_at IS 'When approval was requested.';
COMMENT ON COLUMN read.lead_designs.decision IS 'approved, rejected, or cancelled (the lead closed while approval was pending); NULL while undecided.';
COMMENT ON COLUMN read.lead_designs.decided_at IS 'When the decision was recorded.';
COMMENT ON COLUMN read.lead_designs.decision_reason IS 'Reason given with a rejection.';
COMMENT ON COLUMN read.lead_designs.comment_count IS 'Comments on this version (rows in lead_design_comments).';
COMMENT ON COLUMN read.lead_designs.position IS 'Global position of the submission event.';

CREATE TABLE read.lead_design_comments (
    lead_id         uuid        NOT NULL,
    seq             integer     NOT NULL,
    tenant_id       text        NOT NULL,
    design_version  integer     NOT NULL,
    author_id       uuid        NOT NULL,
    body            text        NOT NULL,
    at              timestamptz NOT NULL,
    position        bigint      NOT NULL,
    CONSTRAINT lead_design_comments_pkey PRIMARY KEY (lead_id, seq)
);
CREATE INDEX lead_design_comments_by_version ON read.lead_design_comments (lead_id, design_version, seq);

COMMENT ON TABLE read.lead_design_comments IS 'Comments on lead designs, oldest first (projection: leads).';
COMMENT ON COLUMN read.lead_design_comments.lead_id IS 'The lead.';
COMMENT ON COLUMN read.lead_design_comments.seq IS '1 for the lead''s first design comment, then 2, ...';
COMMENT ON COLUMN read.lead_design_comments.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.lead_design_comments.design_version IS 'The design version commented on.';
COMMENT ON COLUMN read.lead_design_comments.author_id IS 'Who wrote the comment.';
COMMENT ON COLUMN read.lead_design_comments.body IS 'The comment text.';
COMMENT ON COLUMN read.lead_design_comments.at IS 'When the comment was written.';
COMMENT ON COLUMN read.lead_design_comments.position IS 'Global position of the event that recorded it.';

CREATE TABLE read.lead_tasks (
    lead_id       uuid        NOT NULL,
    task_id       uuid        NOT NULL,
    tenant_id     text        NOT NULL,
    title         text        NOT NULL,
    status        text        NOT NULL,
    assignee_id   uuid,
    added_by      uuid        NOT NULL,
    added_at      timestamptz NOT NULL,
    assigned_by   uuid,
    assigned_at   timestamptz,
    completed_by  uuid,
    completed_at  timestamptz,
    CONSTRAINT lead_tasks_pkey PRIMARY KEY (lead_id, task_id)
);
CREATE INDEX lead_tasks_by_assignee ON read.lead_tasks (tenant_id, assignee_id, status) WHERE assignee_id IS NOT NULL;
CREATE INDEX lead_tasks_open ON read.lead_tasks (lead_id) WHERE completed_at IS NULL;

COMMENT ON TABLE read.lead_tasks IS 'Implementation (provisioning) tasks of leads (projection: leads).';
COMMENT ON COLUMN read.lead_tasks.lead_id IS 'The lead.';
COMMENT ON COLUMN read.lead_tasks.task_id IS 'The task.';
COMMENT ON COLUMN read.lead_tasks.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.lead_tasks.title IS 'What is to be done.';
COMMENT ON COLUMN read.lead_tasks.status IS 'open (no assignee), assigned or completed.';
COMMENT ON COLUMN read.lead_tasks.assignee_id IS 'The current assignee; NULL while unassigned.';
COMMENT ON COLUMN read.lead_tasks.added_by IS 'User who added the task.';
COMMENT ON COLUMN read.lead_tasks.added_at IS 'When the task was added.';
COMMENT ON COLUMN read.lead_tasks.assigned_by IS 'User who made the current assignment.';
COMMENT ON COLUMN read.lead_tasks.assigned_at IS 'When the current assignee was assigned.';
COMMENT ON COLUMN read.lead_tasks.completed_by IS 'User who completed the task.';
COMMENT ON COLUMN read.lead_tasks.completed_at IS 'When the task was completed; NULL while open.';

CREATE TABLE read.lead_activation_tests (
    lead_id      uuid        NOT NULL,
    seq          integer     NOT NULL,
    tenant_id    text        NOT NULL,
    name         text        NOT NULL,
    result       text        NOT NULL,
    defect_ids   uuid[]      NOT NULL DEFAULT '{}',
    recorded_by  uuid        NOT NULL,
    recorded_at  timestamptz NOT NULL,
    position     bigint      NOT NULL,
    CONSTRAINT lead_activation_tests_pkey PRIMARY KEY (lead_id, seq)
);
CREATE INDEX lead_activation_tests_by_result ON read.lead_activation_tests (tenant_id, result, recorded_at);

COMMENT ON TABLE read.lead_activation_tests IS 'Activation tests run on leads in testing, in order (projection: leads).';
COMMENT ON COLUMN read.lead_activation_tests.lead_id IS 'The lead.';
COMMENT ON COLUMN read.lead_activation_tests.seq IS '1 for the lead''s first test, then 2, ...';
COMMENT ON COLUMN read.lead_activation_tests.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.lead_activation_tests.name IS 'Name of the test, e.g. throughput 1G.';
COMMENT ON COLUMN read.lead_activation_tests.result IS 'passed or failed.';
COMMENT ON COLUMN read.lead_activation_tests.defect_ids IS 'Defects the test raised (rows in lead_defects).';
COMMENT ON COLUMN read.lead_activation_tests.recorded_by IS 'User who recorded the test.';
COMMENT ON COLUMN read.lead_activation_tests.recorded_at IS 'When the test was recorded.';
COMMENT ON COLUMN read.lead_activation_tests.position IS 'Global position of the event that recorded it.';

CREATE TABLE read.lead_defects (
    lead_id      uuid        NOT NULL,
    defect_id    uuid        NOT NULL,
    tenant_id    text        NOT NULL,
    title        text        NOT NULL,
    status       text        NOT NULL,
    raised_by    uuid        NOT NULL,
    raised_at    timestamptz NOT NULL,
    resolution   text,
    resolved_by  uuid,
    resolved_at  timestamptz,
    CONSTRAINT lead_defects_pkey PRIMARY KEY (lead_id, defect_id)
);
CREATE INDEX lead_defects_open ON read.lead_defects (lead_id) WHERE resolved_at IS NULL;
CREATE INDEX lead_defects_by_raised ON read.lead_defects (tenant_id, raised_at);

COMMENT ON TABLE read.lead_defects IS 'Defects found while testing leads (projection: leads).';
COMMENT ON COLUMN read.lead_defects.lead_id IS 'The lead.';
COMMENT ON COLUMN read.lead_defects.defect_id IS 'The defect.';
COMMENT ON COLUMN read.lead_defects.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.lead_defects.title IS 'What is wrong.';
COMMENT ON COLUMN read.lead_defects.status IS 'open or resolved.';
COMMENT ON COLUMN read.lead_defects.raised_by IS 'User who raised the defect.';
COMMENT ON COLUMN read.lead_defects.raised_at IS 'When the defect was raised.';
COMMENT ON COLUMN read.lead_defects.resolution IS 'How it was resolved.';
COMMENT ON COLUMN read.lead_defects.resolved_by IS 'User who resolved it.';
COMMENT ON COLUMN read.lead_defects.resolved_at IS 'When it was resolved; NULL while open.';
