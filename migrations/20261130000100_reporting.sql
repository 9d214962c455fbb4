-- The `reporting` schema: aggregates kept by the reporting projections
-- (reporting_tickets, reporting_leads, reporting_approvals,
-- reporting_contracts) from the event log, exactly once, for the report
-- endpoints (GET /api/v1/reports/...) and for analysts (role
-- chronicle_analyst, SELECT only). See docs/adr/0004-reporting.md.
--
-- Conventions shared by every table:
--   * Days are UTC calendar days of the event's business time (the `at` of
--     its data), never of recorded_at.
--   * *_daily tables hold one row per tenant, day (`period`) and group;
--     *_monthly tables the same per month (`period` is the month's first
--     day): each monthly row is the sum of that month's daily rows. They
--     are separate tables so that a month's rows are few and together.
--   * dim / value: the same events are counted once per dimension. dim
--     'all' has value '' (everything); dim 'priority' has value 'P1', ...
--     ALWAYS filter on one dim, or figures are counted several times.
--   * Flow columns count what happened in the period (opened, signed, ...).
--   * *_delta columns are changes of a stock (backlog, active contracts,
--     overdue levels, ...): the stock at the end of day D is the sum of the
--     deltas of every daily row with period <= D (rows may exist for future
--     days: a due date known in advance).
--   * Durations are milliseconds. *_sum_ms / count is the exact mean.
--     *_keys / *_counts is a quantile sketch: counts[i] durations fell in
--     bucket keys[i]; bucket 0 is 0 ms, bucket k >= 1 holds
--     (g^(k-2), g^(k-1)] ms with g = 1.01 / 0.99, and stands for
--     2 * g^(k-1) / (g + 1) ms, within 1 % of every duration in it.
--     reporting.sketch_quantile(keys, counts, q) reads one.
--   * *_facts tables hold one row per entity: what the projection needs to
--     know about it, and handy for ad-hoc questions.
--   * Rollup rows are updated in place by every batch that touches their
--     period (a month's row by every batch of the month): the tables leave
--     room in each page (fillfactor) so that updates stay on the page (HOT)
--     and a period's rows stay together instead of spreading over a bloated
--     table. Rebuilds keep these storage parameters.

CREATE SCHEMA reporting;
COMMENT ON SCHEMA reporting IS
  'Reporting aggregates kept by the reporting projections from the event log (ticketing and expert efficiency, the lead funnel, approvals, contracts). Read-only for analysts (role chronicle_analyst). Rebuilt from events at any time. Read the table comments: *_daily and *_monthly tables count every event once per dim.';

GRANT USAGE ON SCHEMA reporting TO chronicle_analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO chronicle_analyst;
COMMENT ON ROLE chronicle_analyst IS
  'Read-only access to the read models (schema read) and the reports (schema reporting). Grant it to a login role: CREATE ROLE alice LOGIN PASSWORD ''...'' IN ROLE chronicle_analyst.';

-- The quantile of a stored sketch, for analysts (the API computes the same
-- in Rust): the representative value of the bucket holding rank
-- ceil(q * n), in milliseconds; within 1 % of the exact percentile_disc(q).
CREATE FUNCTION reporting.sketch_quantile(keys integer[], counts bigint[], q double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    WITH b AS (
        SELECT k, c, sum(c) OVER (ORDER BY k) AS running, sum(c) OVER () AS n
        FROM unnest(keys, counts) AS u(k, c)
    )
    SELECT CASE WHEN k = 0 THEN 0::double precision
                ELSE 2 * power(1.01 / 0.99, k - 1) / (1.01 / 0.99 + 1) END
    FROM b
    WHERE running >= greatest(1, ceil(q * n))
    ORDER BY k
    LIMIT 1
$$;
COMMENT ON FUNCTION reporting.sketch_quantile(integer[], bigint[], double precision) IS
  'The quantile q (0 < q <= 1) of a duration sketch (*_keys, *_counts; sum the counts per key first to merge rows), in milliseconds, within 1 % of the exact value. Example: SELECT reporting.sketch_quantile(assign_keys, assign_counts, 0.9) / 1000 AS p90_secs.';
GRANT EXECUTE ON FUNCTION reporting.sketch_quantile(integer[], bigint[], double precision) TO chronicle_analyst;

-- ---------------------------------------------------------------------------
-- Tickets and experts (projection reporting_tickets)
-- ---------------------------------------------------------------------------

CREATE TABLE reporting.ticket_facts (
    ticket_id                 uuid        NOT NULL,
    tenant_id                 text        NOT NULL,
    opened_at                 timestamptz NOT NULL,
    priority                  text        NOT NULL,
    category                  text        NOT NULL,
    product                   text        NOT NULL,
    status                    text        NOT NULL,
    expert_id                 uuid,
    assigned_at               timestamptz,
    first_assigned_at         timestamptz,
    assign_priority           text,
    assign_breached           boolean     NOT NULL DEFAULT false,
    first_response_at         timestamptz,
    first_response_priority   text,
    first_response_breached   boolean     NOT NULL DEFAULT false,
    resolved_at               timestamptz,
    resolve_priority          text,
    resolve_breached          boolean     NOT NULL DEFAULT false,
    resolutions               integer     NOT NULL DEFAULT 0,
    reopens                   integer     NOT NULL DEFAULT 0,
    position                  bigint      NOT NULL,
    CONSTRAINT ticket_facts_pkey PRIMARY KEY (ticket_id)
);
CREATE INDEX ticket_facts_by_opened ON reporting.ticket_facts (tenant_id, opened_at);

COMMENT ON TABLE reporting.ticket_facts IS 'One row per ticket: what the ticket reports need to know about it (projection: reporting_tickets). The SLA stages are assign, first_response and resolve, each measured from the opening.';
COMMENT ON COLUMN reporting.ticket_facts.ticket_id IS 'The ticket.';
COMMENT ON COLUMN reporting.ticket_facts.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN reporting.ticket_facts.opened_at IS 'When it was opened (business time).';
COMMENT ON COLUMN reporting.ticket_facts.priority IS 'Current priority, P1 to P4.';
COMMENT ON COLUMN reporting.ticket_facts.category IS 'Category given on opening.';
COMMENT ON COLUMN reporting.ticket_facts.product IS 'Product given on opening.';
COMMENT ON COLUMN reporting.ticket_facts.status IS 'open, assigned, accepted, in_progress, resolved or closed.';
COMMENT ON COLUMN reporting.ticket_facts.expert_id IS 'The expert holding the ticket; NULL while unassigned.';
COMMENT ON COLUMN reporting.ticket_facts.assigned_at IS 'When the current expert was assigned; NULL while unassigned.';
COMMENT ON COLUMN reporting.ticket_facts.first_assigned_at IS 'Completion of the assign stage: the first assignment.';
COMMENT ON COLUMN reporting.ticket_facts.assign_priority IS 'Priority when the assign stage completed (the group its duration counts in).';
COMMENT ON COLUMN reporting.ticket_facts.assign_breached IS 'An SLA breach of the assign stage was recorded.';
COMMENT ON COLUMN reporting.ticket_facts.first_response_at IS 'Completion of the first_response stage: the assigned expert accepting or commenting, whichever came first.';
COMMENT ON COLUMN reporting.ticket_facts.first_response_priority IS 'Priority when the first_response stage completed.';
COMMENT ON COLUMN reporting.ticket_facts.first_response_breached IS 'An SLA breach of the first_response stage was recorded.';
COMMENT ON COLUMN reporting.ticket_facts.resolved_at IS 'Completion of the resolve stage: the current resolution; NULL while unresolved (a reopen withdraws it).';
COMMENT ON COLUMN reporting.ticket_facts.resolve_priority IS 'Priority when the current resolution happened.';
COMMENT ON COLUMN reporting.ticket_facts.resolve_breached IS 'An SLA breach of the resolve stage was recorded.';
COMMENT ON COLUMN reporting.ticket_facts.resolutions IS 'How many times it was resolved.';
COMMENT ON COLUMN reporting.ticket_facts.reopens IS 'How many times it was reopened.';
COMMENT ON COLUMN reporting.ticket_facts.position IS 'Global position of its last event.';

CREATE TABLE reporting.ticket_daily (
    tenant_id                 text      NOT NULL,
    dim                       text      NOT NULL,
    period                    date      NOT NULL,
    value                     text      NOT NULL,
    opened                    bigint    NOT NULL DEFAULT 0,
    assigned                  bigint    NOT NULL DEFAULT 0,
    rejected                  bigint    NOT NULL DEFAULT 0,
    resolved                  bigint    NOT NULL DEFAULT 0,
    reopened                  bigint    NOT NULL DEFAULT 0,
    closed                    bigint    NOT NULL DEFAULT 0,
    escalated                 bigint    NOT NULL DEFAULT 0,
    backlog_delta             bigint    NOT NULL DEFAULT 0,
    assign_count              bigint    NOT NULL DEFAULT 0,
    assign_sum_ms             bigint    NOT NULL DEFAULT 0,
    assign_keys               integer[] NOT NULL DEFAULT '{}',
    assign_counts             bigint[]  NOT NULL DEFAULT '{}',
    assign_met                bigint    NOT NULL DEFAULT 0,
    assign_breached           bigint    NOT NULL DEFAULT 0,
    first_response_count      bigint    NOT NULL DEFAULT 0,
    first_response_sum_ms     bigint    NOT NULL DEFAULT 0,
    first_response_keys       integer[] NOT NULL DEFAULT '{}',
    first_response_counts     bigint[]  NOT NULL DEFAULT '{}',
    first_response_met        bigint    NOT NULL DEFAULT 0,
    first_response_breached   bigint    NOT NULL DEFAULT 0,
    resolve_count             bigint    NOT NULL DEFAULT 0,
    resolve_sum_ms            bigint    NOT NULL DEFAULT 0,
    resolve_keys              integer[] NOT NULL DEFAULT '{}',
    resolve_counts            bigint[]  NOT NULL DEFAULT '{}',
    resolve_met               bigint    NOT NULL DEFAULT 0,
    resolve_breached          bigint    NOT NULL DEFAULT 0,
    CONSTRAINT ticket_daily_pkey PRIMARY KEY (tenant_id, dim, period, value),
    CONSTRAINT ticket_daily_dim CHECK (dim IN ('all', 'priority', 'category', 'product'))
) WITH (fillfactor = 70);

COMMENT ON TABLE reporting.ticket_daily IS 'Ticketing efficiency per tenant, day and group (projection: reporting_tickets). Filter on dim: each event counts once per dim. Groups use the ticket''s priority at the time of the event. Example: SELECT period, opened FROM reporting.ticket_daily WHERE tenant_id = ''acme'' AND dim = ''all'' ORDER BY period.';
COMMENT ON COLUMN reporting.ticket_daily.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN reporting.ticket_daily.dim IS 'Which grouping the row belongs to: all, priority, category or product.';
COMMENT ON COLUMN reporting.ticket_daily.period IS 'The UTC day.';
COMMENT ON COLUMN reporting.ticket_daily.value IS 'The group: '''' for dim all, else the priority (P1-P4), category or product.';
COMMENT ON COLUMN reporting.ticket_daily.opened IS 'Tickets opened (ticket.opened).';
COMMENT ON COLUMN reporting.ticket_daily.assigned IS 'Expert assignments (ticket.expert_assigned), re-assignments after a rejection included.';
COMMENT ON COLUMN reporting.ticket_daily.rejected IS 'Rejections by the assigned expert (ticket.rejected).';
COMMENT ON COLUMN reporting.ticket_daily.resolved IS 'Resolutions (ticket.resolved), including later-reopened ones.';
COMMENT ON COLUMN reporting.ticket_daily.reopened IS 'Reopenings (ticket.reopened).';
COMMENT ON COLUMN reporting.ticket_daily.closed IS 'Closings (ticket.closed).';
COMMENT ON COLUMN reporting.ticket_daily.escalated IS 'Escalations (ticket.escalated).';
COMMENT ON COLUMN reporting.ticket_daily.backlog_delta IS 'Change of the backlog (unresolved tickets): +1 opened or reopened, -1 resolved; a priority change moves a ticket between priority groups. Backlog at the end of day D = sum over the daily rows with period <= D.';
COMMENT ON COLUMN reporting.ticket_daily.assign_count IS 'First assignments in the period: how many durations the assign sketch holds.';
COMMENT ON COLUMN reporting.ticket_daily.assign_sum_ms IS 'Sum of time to assign (opening to first assignment), ms.';
COMMENT ON COLUMN reporting.ticket_daily.assign_keys IS 'Sketch of time to assign: bucket keys (see the schema comment).';
COMMENT ON COLUMN reporting.ticket_daily.assign_counts IS 'Sketch of time to assign: durations per bucket key.';
COMMENT ON COLUMN reporting.ticket_daily.assign_met IS 'First assignments with no SLA breach of the stage recorded (a later breach takes it back).';
COMMENT ON COLUMN reporting.ticket_daily.assign_breached IS 'SLA breaches of the assign stage recorded (ticket.sla_breached, by its priority).';
COMMENT ON COLUMN reporting.ticket_daily.first_response_count IS 'First responses in the period.';
COMMENT ON COLUMN reporting.ticket_daily.first_response_sum_ms IS 'Sum of time to first response (opening to first response), ms.';
COMMENT ON COLUMN reporting.ticket_daily.first_response_keys IS 'Sketch of time to first response: bucket keys.';
COMMENT ON COLUMN reporting.ticket_daily.first_response_counts IS 'Sketch of time to first response: durations per bucket key.';
COMMENT ON COLUMN reporting.ticket_daily.first_response_met IS 'First responses with no SLA breach of the stage recorded.';
COMMENT ON COLUMN reporting.ticket_daily.first_response_breached IS 'SLA breaches of the first_response stage recorded.';
COMMENT ON COLUMN reporting.ticket_daily.resolve_count IS 'Current resolutions in the period (a reopen withdraws one from the day it happened).';
COMMENT ON COLUMN reporting.ticket_daily.resolve_sum_ms IS 'Sum of time to resolve (opening to the current resolution), ms.';
COMMENT ON COLUMN reporting.ticket_daily.resolve_keys IS 'Sketch of time to resolve: bucket keys.';
COMMENT ON COLUMN reporting.ticket_daily.resolve_counts IS 'Sketch of time to resolve: durations per bucket key.';
COMMENT ON COLUMN reporting.ticket_daily.resolve_met IS 'Current resolutions with no SLA breach of the stage recorded.';
COMMENT ON COLUMN reporting.ticket_daily.resolve_breached IS 'SLA breaches of the resolve stage recorded.';

CREATE TABLE reporting.ticket_monthly (LIKE reporting.ticket_daily INCLUDING ALL) WITH (fillfactor = 50);
ALTER TABLE reporting.ticket_monthly RENAME CONSTRAINT ticket_daily_dim TO ticket_monthly_dim;
COMMENT ON TABLE reporting.ticket_monthly IS 'reporting.ticket_daily per month: the same columns, one row per month (period: its first day), each the sum of the month''s daily rows. A stock at the end of a month is the sum of the *_delta columns over the monthly rows up to it. Reports read these for whole months.';
COMMENT ON COLUMN reporting.ticket_monthly.period IS 'The first day of the month (UTC).';

CREATE TABLE reporting.expert_daily (
    tenant_id           text      NOT NULL,
    period              date      NOT NULL,
    expert_id           uuid      NOT NULL,
    assigned            bigint    NOT NULL DEFAULT 0,
    accepted            bigint    NOT NULL DEFAULT 0,
    rejected            bigint    NOT NULL DEFAULT 0,
    handled             bigint    NOT NULL DEFAULT 0,
    resolution_sum_ms   bigint    NOT NULL DEFAULT 0,
    resolution_keys     integer[] NOT NULL DEFAULT '{}',
    resolution_counts   bigint[]  NOT NULL DEFAULT '{}',
    surveys             bigint    NOT NULL DEFAULT 0,
    score_sum           bigint    NOT NULL DEFAULT 0,
    score_1             bigint    NOT NULL DEFAULT 0,
    score_2             bigint    NOT NULL DEFAULT 0,
    score_3             bigint    NOT NULL DEFAULT 0,
    score_4             bigint    NOT NULL DEFAULT 0,
    score_5             bigint    NOT NULL DEFAULT 0,
    CONSTRAINT expert_daily_pkey PRIMARY KEY (tenant_id, period, expert_id)
) WITH (fillfactor = 70);

COMMENT ON TABLE reporting.expert_daily IS 'Expert efficiency per tenant, day and expert (projection: reporting_tickets).';
COMMENT ON COLUMN reporting.expert_daily.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN reporting.expert_daily.period IS 'The UTC day.';
COMMENT ON COLUMN reporting.expert_daily.expert_id IS 'The expert.';
COMMENT ON COLUMN reporting.expert_daily.assigned IS 'Assignments to the expert made in the period.';
COMMENT ON COLUMN reporting.expert_daily.accepted IS 'Of the assignments made in the period, those the expert accepted (counted on the assignment''s day).';
COMMENT ON COLUMN reporting.expert_daily.rejected IS 'Of the assignments made in the period, those the expert rejected (counted on the assignment''s day); rejected / assigned is the rejection rate.';
COMMENT ON COLUMN reporting.expert_daily.handled IS 'Tickets the expert resolved in the period (each resolution; a reopened ticket resolved again counts again).';
COMMENT ON COLUMN reporting.expert_daily.resolution_sum_ms IS 'Sum of resolution times (the expert''s assignment to the resolution), ms; divide by handled for the mean.';
COMMENT ON COLUMN reporting.expert_daily.resolution_keys IS 'Sketch of resolution times: bucket keys.';
COMMENT ON COLUMN reporting.expert_daily.resolution_counts IS 'Sketch of resolution times: durations per bucket key.';
COMMENT ON COLUMN reporting.expert_daily.surveys IS 'Satisfaction surveys answered in the period about tickets the expert worked on.';
COMMENT ON COLUMN reporting.expert_daily.score_sum IS 'Sum of their scores (1 to 5); divide by surveys for the mean.';
COMMENT ON COLUMN reporting.expert_daily.score_1 IS 'Surveys scored 1.';
COMMENT ON COLUMN reporting.expert_daily.score_2 IS 'Surveys scored 2.';
COMMENT ON COLUMN reporting.expert_daily.score_3 IS 'Surveys scored 3.';
COMMENT ON COLUMN reporting.expert_daily.score_4 IS 'Surveys scored 4.';
COMMENT ON COLUMN reporting.expert_daily.score_5 IS 'Surveys scored 5.';

CREATE TABLE reporting.expert_monthly (LIKE reporting.expert_daily INCLUDING ALL) WITH (fillfactor = 50);
COMMENT ON TABLE reporting.expert_monthly IS 'reporting.expert_daily per month: the same columns, one row per month (period: its first day), each the sum of the month''s daily rows. Reports read these for whole months.';
COMMENT ON COLUMN reporting.expert_monthly.period IS 'The first day of the month (UTC).';

-- ---------------------------------------------------------------------------
-- Leads (projection reporting_leads)
-- ---------------------------------------------------------------------------

CREATE TABLE reporting.lead_facts (
    lead_id           uuid        NOT NULL,
    tenant_id         text        NOT NULL,
    owner_id          uuid,
    currency          text        NOT NULL,
    value_minor       bigint      NOT NULL,
    stage             text        NOT NULL,
    stage_entered_at  timestamptz NOT NULL,
    position          bigint      NOT NULL,
    CONSTRAINT lead_facts_pkey PRIMARY KEY (lead_id)
);
CREATE INDEX lead_facts_by_stage ON reporting.lead_facts (tenant_id, stage);

COMMENT ON TABLE reporting.lead_facts IS 'One row per lead: its owner, value and current stage (projection: reporting_leads).';
COMMENT ON COLUMN reporting.lead_facts.lead_id IS 'The lead.';
COMMENT ON COLUMN reporting.lead_facts.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN reporting.lead_facts.owner_id IS 'Current owner; NULL while unowned.';
COMMENT ON COLUMN reporting.lead_facts.currency IS 'Currency of the estimated value (ISO 4217).';
COMMENT ON COLUMN reporting.lead_facts.value_minor IS 'Estimated value in minor units (cents).';
COMMENT ON COLUMN reporting.lead_facts.stage IS 'Current stage: captured, qualified, serviceability_checked, design, design_approval, implementation, testing, support or closed.';
COMMENT ON COLUMN reporting.lead_facts.stage_entered_at IS 'When it entered the current stage.';
COMMENT ON COLUMN reporting.lead_facts.position IS 'Global position of its last event.';

CREATE TABLE reporting.lead_daily (
    tenant_id         text      NOT NULL,
    dim               text      NOT NULL,
    period            date      NOT NULL,
    value             text      NOT NULL,
    currency          text      NOT NULL,
    stage             text      NOT NULL,
    entered           bigint    NOT NULL DEFAULT 0,
    exited            bigint    NOT NULL DEFAULT 0,
    advanced          bigint    NOT NULL DEFAULT 0,
    returned          bigint    NOT NULL DEFAULT 0,
    won               bigint    NOT NULL DEFAULT 0,
    lost              bigint    NOT NULL DEFAULT 0,
    cancelled         bigint    NOT NULL DEFAULT 0,
    won_value_minor   bigint    NOT NULL DEFAULT 0,
    lost_value_minor  bigint    NOT NULL DEFAULT 0,
    stay_sum_ms       bigint    NOT NULL DEFAULT 0,
    stay_keys         integer[] NOT NULL DEFAULT '{}',
    stay_counts       bigint[]  NOT NULL DEFAULT '{}',
    in_stage_delta    bigint    NOT NULL DEFAULT 0,
    CONSTRAINT lead_daily_pkey PRIMARY KEY (tenant_id, dim, period, value, currency, stage),
    CONSTRAINT lead_daily_dim CHECK (dim IN ('all', 'owner'))
) WITH (fillfactor = 70);

COMMENT ON TABLE reporting.lead_daily IS 'The lead funnel per tenant, day, group, currency and stage (projection: reporting_leads). Filter on dim. A stage move counts as exited for the stage left and entered for the stage entered, in the group of the owner at the time of the move.';
COMMENT ON COLUMN reporting.lead_daily.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN reporting.lead_daily.dim IS 'all or owner.';
COMMENT ON COLUMN reporting.lead_daily.period IS 'The UTC day.';
COMMENT ON COLUMN reporting.lead_daily.value IS 'The group: '''' for dim all; for dim owner the owner''s id at the time, or none.';
COMMENT ON COLUMN reporting.lead_daily.currency IS 'Currency of the leads'' estimated value.';
COMMENT ON COLUMN reporting.lead_daily.stage IS 'The stage the figures are about.';
COMMENT ON COLUMN reporting.lead_daily.entered IS 'Leads entering the stage (captured: new leads; closed: closings).';
COMMENT ON COLUMN reporting.lead_daily.exited IS 'Leads leaving the stage.';
COMMENT ON COLUMN reporting.lead_daily.advanced IS 'Of those leaving, the ones that moved to a later stage (not closing).';
COMMENT ON COLUMN reporting.lead_daily.returned IS 'Of those leaving, the ones that went back to an earlier stage (a rejected design).';
COMMENT ON COLUMN reporting.lead_daily.won IS 'Of those leaving, the ones closed won.';
COMMENT ON COLUMN reporting.lead_daily.lost IS 'Of those leaving, the ones closed lost.';
COMMENT ON COLUMN reporting.lead_daily.cancelled IS 'Of those leaving, the ones closed cancelled.';
COMMENT ON COLUMN reporting.lead_daily.won_value_minor IS 'Estimated value of the leads won, minor units of currency.';
COMMENT ON COLUMN reporting.lead_daily.lost_value_minor IS 'Estimated value of the leads lost, minor units of currency.';
COMMENT ON COLUMN reporting.lead_daily.stay_sum_ms IS 'Sum of the time spent in the stage by the leads leaving it, ms; divide by exited for the mean.';
COMMENT ON COLUMN reporting.lead_daily.stay_keys IS 'Sketch of the time in stage: bucket keys.';
COMMENT ON COLUMN reporting.lead_daily.stay_counts IS 'Sketch of the time in stage: durations per bucket key.';
COMMENT ON COLUMN reporting.lead_daily.in_stage_delta IS 'Change of the number of leads in the stage (not for closed): the count at the end of day D is the sum over the daily rows with period <= D.';

CREATE TABLE reporting.lead_monthly (LIKE reporting.lead_daily INCLUDING ALL) WITH (fillfactor = 50);
ALTER TABLE reporting.lead_monthly RENAME CONSTRAINT lead_daily_dim TO lead_monthly_dim;
COMMENT ON TABLE reporting.lead_monthly IS 'reporting.lead_daily per month: the same columns, one row per month (period: its first day), each the sum of the month''s daily rows. A stock at the end of a month is the sum of the *_delta columns over the monthly rows up to it. Reports read these for whole months.';
COMMENT ON COLUMN reporting.lead_monthly.period IS 'The first day of the month (UTC).';

-- ---------------------------------------------------------------------------
-- Approvals (projection reporting_approvals)
-- ---------------------------------------------------------------------------

CREATE TABLE reporting.approval_facts (
    approval_id      uuid        NOT NULL,
    tenant_id        text        NOT NULL,
    subject_kind     text        NOT NULL,
    status           text        NOT NULL,
    requested_at     timestamptz NOT NULL,
    level            smallint    NOT NULL,
    level_opened_at  timestamptz NOT NULL,
    level_due_at     timestamptz,
    due_secs         bigint[]    NOT NULL,
    position         bigint      NOT NULL,
    CONSTRAINT approval_facts_pkey PRIMARY KEY (approval_id)
);
CREATE INDEX approval_facts_by_status ON reporting.approval_facts (tenant_id, status);

COMMENT ON TABLE reporting.approval_facts IS 'One row per approval: its current level and deadline (projection: reporting_approvals).';
COMMENT ON COLUMN reporting.approval_facts.approval_id IS 'The approval.';
COMMENT ON COLUMN reporting.approval_facts.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN reporting.approval_facts.subject_kind IS 'What is approved: lead_design or contract.';
COMMENT ON COLUMN reporting.approval_facts.status IS 'open, granted, rejected, changes_requested or cancelled.';
COMMENT ON COLUMN reporting.approval_facts.requested_at IS 'When it was requested.';
COMMENT ON COLUMN reporting.approval_facts.level IS 'The current (or last) level, from 0.';
COMMENT ON COLUMN reporting.approval_facts.level_opened_at IS 'When the current level opened.';
COMMENT ON COLUMN reporting.approval_facts.level_due_at IS 'When the current level is overdue; NULL without a deadline.';
COMMENT ON COLUMN reporting.approval_facts.due_secs IS 'Each level''s deadline in seconds from its opening (NULL: none).';
COMMENT ON COLUMN reporting.approval_facts.position IS 'Global position of its last event.';

CREATE TABLE reporting.approval_daily (
    tenant_id          text      NOT NULL,
    dim                text      NOT NULL,
    period             date      NOT NULL,
    value              text      NOT NULL,
    level              smallint  NOT NULL,
    started            bigint    NOT NULL DEFAULT 0,
    approved           bigint    NOT NULL DEFAULT 0,
    rejected           bigint    NOT NULL DEFAULT 0,
    changes_requested  bigint    NOT NULL DEFAULT 0,
    cancelled          bigint    NOT NULL DEFAULT 0,
    escalated          bigint    NOT NULL DEFAULT 0,
    cycle_sum_ms       bigint    NOT NULL DEFAULT 0,
    cycle_keys         integer[] NOT NULL DEFAULT '{}',
    cycle_counts       bigint[]  NOT NULL DEFAULT '{}',
    overdue_delta      bigint    NOT NULL DEFAULT 0,
    CONSTRAINT approval_daily_pkey PRIMARY KEY (tenant_id, dim, period, value, level),
    CONSTRAINT approval_daily_dim CHECK (dim IN ('all', 'subject_kind'))
) WITH (fillfactor = 70);

COMMENT ON TABLE reporting.approval_daily IS 'Approval cycle times and outcomes per tenant, day, group and level (projection: reporting_approvals). Filter on dim. Level -1 is the approval as a whole (requested to its outcome); level 0, 1, ... one level (opened to decided).';
COMMENT ON COLUMN reporting.approval_daily.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN reporting.approval_daily.dim IS 'all or subject_kind.';
COMMENT ON COLUMN reporting.approval_daily.period IS 'The UTC day.';
COMMENT ON COLUMN reporting.approval_daily.value IS 'The group: '''' for dim all, else lead_design or contract.';
COMMENT ON COLUMN reporting.approval_daily.level IS '-1: the whole approval; 0, 1, ...: that level.';
COMMENT ON COLUMN reporting.approval_daily.started IS 'Approvals requested (level -1) or levels opened.';
COMMENT ON COLUMN reporting.approval_daily.approved IS 'Approvals granted (level -1) or levels completed with their required approvals.';
COMMENT ON COLUMN reporting.approval_daily.rejected IS 'Rejections (at this level, or of the approval).';
COMMENT ON COLUMN reporting.approval_daily.changes_requested IS 'Requests for changes, which end an approval like a rejection.';
COMMENT ON COLUMN reporting.approval_daily.cancelled IS 'Cancellations (of the approval, or while this level was open).';
COMMENT ON COLUMN reporting.approval_daily.escalated IS 'Escalations of overdue levels (approval.escalated).';
COMMENT ON COLUMN reporting.approval_daily.cycle_sum_ms IS 'Sum of cycle times of the approvals or levels decided in the period (approved, rejected or changes requested; cancellations are not timed), ms.';
COMMENT ON COLUMN reporting.approval_daily.cycle_keys IS 'Sketch of the cycle times: bucket keys.';
COMMENT ON COLUMN reporting.approval_daily.cycle_counts IS 'Sketch of the cycle times: durations per bucket key.';
COMMENT ON COLUMN reporting.approval_daily.overdue_delta IS 'Change of the number of open levels past their deadline: +1 on the day the deadline passes, -1 on the day the level is decided or cancelled. Overdue at the end of day D = sum over the daily rows with period <= D.';

CREATE TABLE reporting.approval_monthly (LIKE reporting.approval_daily INCLUDING ALL) WITH (fillfactor = 50);
ALTER TABLE reporting.approval_monthly RENAME CONSTRAINT approval_daily_dim TO approval_monthly_dim;
COMMENT ON TABLE reporting.approval_monthly IS 'reporting.approval_daily per month: the same columns, one row per month (period: its first day), each the sum of the month''s daily rows. A stock at the end of a month is the sum of the *_delta columns over the monthly rows up to it. Reports read these for whole months.';
COMMENT ON COLUMN reporting.approval_monthly.period IS 'The first day of the month (UTC).';

-- ---------------------------------------------------------------------------
-- Contracts (projection reporting_contracts)
-- ---------------------------------------------------------------------------

CREATE TABLE reporting.contract_facts (
    contract_id      uuid        NOT NULL,
    tenant_id        text        NOT NULL,
    owner_id         uuid        NOT NULL,
    status           text        NOT NULL,
    currency         text        NOT NULL,
    value_minor      bigint      NOT NULL,
    end_date         date        NOT NULL,
    signed_at        timestamptz,
    activated_at     timestamptz,
    term_started_on  date,
    ended_at         timestamptz,
    position         bigint      NOT NULL,
    CONSTRAINT contract_facts_pkey PRIMARY KEY (contract_id)
);
CREATE INDEX contract_facts_by_end ON reporting.contract_facts (tenant_id, status, end_date);

COMMENT ON TABLE reporting.contract_facts IS 'One row per contract: value, term and lifecycle times (projection: reporting_contracts).';
COMMENT ON COLUMN reporting.contract_facts.contract_id IS 'The contract.';
COMMENT ON COLUMN reporting.contract_facts.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN reporting.contract_facts.owner_id IS 'The user who drafted it.';
COMMENT ON COLUMN reporting.contract_facts.status IS 'draft, pending_approval, approved, rejected, signed, active, terminated or expired.';
COMMENT ON COLUMN reporting.contract_facts.currency IS 'Currency of its value (ISO 4217).';
COMMENT ON COLUMN reporting.contract_facts.value_minor IS 'Current value in minor units (cents).';
COMMENT ON COLUMN reporting.contract_facts.end_date IS 'Current end of term (moved by renewals).';
COMMENT ON COLUMN reporting.contract_facts.signed_at IS 'When it was signed.';
COMMENT ON COLUMN reporting.contract_facts.activated_at IS 'When it became active.';
COMMENT ON COLUMN reporting.contract_facts.term_started_on IS 'Day the current term started: the activation, or the last renewal.';
COMMENT ON COLUMN reporting.contract_facts.ended_at IS 'When it was terminated or expired.';
COMMENT ON COLUMN reporting.contract_facts.position IS 'Global position of its last event.';

CREATE TABLE reporting.contract_daily (
    tenant_id               text    NOT NULL,
    dim                     text    NOT NULL,
    period                  date    NOT NULL,
    value                   text    NOT NULL,
    currency                text    NOT NULL,
    signed                  bigint  NOT NULL DEFAULT 0,
    signed_value_minor      bigint  NOT NULL DEFAULT 0,
    renewed                 bigint  NOT NULL DEFAULT 0,
    renewed_value_minor     bigint  NOT NULL DEFAULT 0,
    terminated              bigint  NOT NULL DEFAULT 0,
    terminated_value_minor  bigint  NOT NULL DEFAULT 0,
    expired                 bigint  NOT NULL DEFAULT 0,
    expired_value_minor     bigint  NOT NULL DEFAULT 0,
    active_delta            bigint  NOT NULL DEFAULT 0,
    active_value_delta      bigint  NOT NULL DEFAULT 0,
    due_30_delta            bigint  NOT NULL DEFAULT 0,
    due_30_value_delta      bigint  NOT NULL DEFAULT 0,
    due_60_delta            bigint  NOT NULL DEFAULT 0,
    due_60_value_delta      bigint  NOT NULL DEFAULT 0,
    due_90_delta            bigint  NOT NULL DEFAULT 0,
    due_90_value_delta      bigint  NOT NULL DEFAULT 0,
    CONSTRAINT contract_daily_pkey PRIMARY KEY (tenant_id, dim, period, value, currency),
    CONSTRAINT contract_daily_dim CHECK (dim IN ('all', 'owner'))
) WITH (fillfactor = 70);

COMMENT ON TABLE reporting.contract_daily IS 'Contract finance per tenant, day, group and currency (projection: reporting_contracts). Filter on dim. Values are minor units of currency. A contract is active from the day of its activation to the day before its termination or expiry.';
COMMENT ON COLUMN reporting.contract_daily.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN reporting.contract_daily.dim IS 'all or owner.';
COMMENT ON COLUMN reporting.contract_daily.period IS 'The UTC day.';
COMMENT ON COLUMN reporting.contract_daily.value IS 'The group: '''' for dim all, else the owner''s id.';
COMMENT ON COLUMN reporting.contract_daily.currency IS 'Currency of the contracts'' values.';
COMMENT ON COLUMN reporting.contract_daily.signed IS 'Contracts signed.';
COMMENT ON COLUMN reporting.contract_daily.signed_value_minor IS 'Their value when signed.';
COMMENT ON COLUMN reporting.contract_daily.renewed IS 'Renewals.';
COMMENT ON COLUMN reporting.contract_daily.renewed_value_minor IS 'Value of the contracts renewed.';
COMMENT ON COLUMN reporting.contract_daily.terminated IS 'Terminations.';
COMMENT ON COLUMN reporting.contract_daily.terminated_value_minor IS 'Value of the contracts terminated.';
COMMENT ON COLUMN reporting.contract_daily.expired IS 'Expiries.';
COMMENT ON COLUMN reporting.contract_daily.expired_value_minor IS 'Value of the contracts expired.';
COMMENT ON COLUMN reporting.contract_daily.active_delta IS 'Change of the number of active contracts (+1 activated, -1 terminated or expired); active at the end of day D = sum over the daily rows with period <= D.';
COMMENT ON COLUMN reporting.contract_daily.active_value_delta IS 'Change of the value of the active contracts.';
COMMENT ON COLUMN reporting.contract_daily.due_30_delta IS 'Change of the number of active contracts whose term ends within the next 30 days (after D, at most D + 30): renewal or expiry due. Summed like active_delta; rows exist for future days.';
COMMENT ON COLUMN reporting.contract_daily.due_30_value_delta IS 'Change of their value.';
COMMENT ON COLUMN reporting.contract_daily.due_60_delta IS 'As due_30_delta, within 60 days.';
COMMENT ON COLUMN reporting.contract_daily.due_60_value_delta IS 'Change of their value.';
COMMENT ON COLUMN reporting.contract_daily.due_90_delta IS 'As due_30_delta, within 90 days.';
COMMENT ON COLUMN reporting.contract_daily.due_90_value_delta IS 'Change of their value.';

CREATE TABLE reporting.contract_monthly (LIKE reporting.contract_daily INCLUDING ALL) WITH (fillfactor = 50);
ALTER TABLE reporting.contract_monthly RENAME CONSTRAINT contract_daily_dim TO contract_monthly_dim;
COMMENT ON TABLE reporting.contract_monthly IS 'reporting.contract_daily per month: the same columns, one row per month (period: its first day), each the sum of the month''s daily rows. A stock at the end of a month is the sum of the *_delta columns over the monthly rows up to it. Reports read these for whole months.';
COMMENT ON COLUMN reporting.contract_monthly.period IS 'The first day of the month (UTC).';
