-- Reactions: the timers projection and its worker's firings, the expert
-- matcher's view, and notifications with their delivery state.
--
-- Tables in schema read are projections (rebuilt from the log by
-- `chronicle projections rebuild`); the tables in public are the workers'
-- own records (firings, delivery attempts, in-app reads), which are not
-- derived from the log and survive rebuilds.

-- ---------------------------------------------------------------------------
-- Timers (projection: timers)
-- ---------------------------------------------------------------------------

CREATE TABLE read.timers (
    timer_id    uuid        NOT NULL,
    tenant_id   text        NOT NULL,
    kind        text        NOT NULL,
    subject_id  uuid        NOT NULL,
    stage       text        NOT NULL,
    due_at      timestamptz NOT NULL,
    status      text        NOT NULL,
    updated_at  timestamptz NOT NULL,
    position    bigint      NOT NULL,
    CONSTRAINT timers_pkey PRIMARY KEY (timer_id)
);
CREATE INDEX timers_pending_by_due ON read.timers (due_at) WHERE status = 'pending';
CREATE INDEX timers_by_subject ON read.timers (subject_id);
CREATE INDEX timers_by_tenant ON read.timers (tenant_id, kind, status, due_at);

COMMENT ON TABLE read.timers IS 'One row per deadline: a ticket''s SLA stage, an approval level''s due time, an active contract''s expiry and renewal notice (projection: timers). The timer worker fires pending rows whose due_at has passed.';
COMMENT ON COLUMN read.timers.timer_id IS 'Stable id of the deadline (the same for a subject, kind and stage whatever its due time).';
COMMENT ON COLUMN read.timers.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.timers.kind IS 'ticket_sla, approval_level, contract_expiry or contract_renewal.';
COMMENT ON COLUMN read.timers.subject_id IS 'The ticket, approval or contract.';
COMMENT ON COLUMN read.timers.stage IS 'ticket_sla: assign, first_response or resolve; approval_level: the level index (0 first); contract_expiry: end; contract_renewal: notice.';
COMMENT ON COLUMN read.timers.due_at IS 'When the deadline passes: ticket opening + the SLA target of its priority (policy in force at opening); level opening + its due_secs; the day after the contract''s end date (00:00 UTC); 30 days before the end date.';
COMMENT ON COLUMN read.timers.status IS 'pending (waiting to fire), completed (the stage or level was done first), fired (the event it caused is in the log), cancelled (the subject ended first).';
COMMENT ON COLUMN read.timers.updated_at IS 'Time of the subject''s last event that changed the row.';
COMMENT ON COLUMN read.timers.position IS 'Global position of that event.';

CREATE TABLE read.timer_tickets (
    ticket_id   uuid        NOT NULL,
    tenant_id   text        NOT NULL,
    sla         jsonb       NOT NULL,
    opened_at   timestamptz NOT NULL,
    position    bigint      NOT NULL,
    CONSTRAINT timer_tickets_pkey PRIMARY KEY (ticket_id)
);

COMMENT ON TABLE read.timer_tickets IS 'The SLA policy each ticket is held to: the tenant''s policy in force when it was opened (projection: timers).';
COMMENT ON COLUMN read.timer_tickets.ticket_id IS 'The ticket.';
COMMENT ON COLUMN read.timer_tickets.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.timer_tickets.sla IS 'The SLA policy (targets in seconds per priority p1..p4 and stage), as in tenant_policy.sla_policy_set.';
COMMENT ON COLUMN read.timer_tickets.opened_at IS 'When the ticket was opened (the SLA clocks start there).';
COMMENT ON COLUMN read.timer_tickets.position IS 'Global position of the ticket.opened event.';

CREATE TABLE public.timer_firings (
    timer_id   uuid        NOT NULL,
    due_at     timestamptz NOT NULL,
    tenant_id  text        NOT NULL,
    kind       text        NOT NULL,
    fired_at   timestamptz NOT NULL,
    outcome    text        NOT NULL,
    CONSTRAINT timer_firings_pkey PRIMARY KEY (timer_id, due_at)
);
CREATE INDEX timer_firings_by_time ON public.timer_firings (tenant_id, fired_at DESC);

COMMENT ON TABLE public.timer_firings IS 'Each firing of a timer at a due time, recorded by the timer worker in the transaction that claimed it: a timer fires once per due time.';
COMMENT ON COLUMN public.timer_firings.timer_id IS 'The timer (read.timers.timer_id).';
COMMENT ON COLUMN public.timer_firings.due_at IS 'The due time it fired for (a moved deadline can fire again).';
COMMENT ON COLUMN public.timer_firings.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN public.timer_firings.kind IS 'The timer''s kind.';
COMMENT ON COLUMN public.timer_firings.fired_at IS 'When the worker fired it (by its clock).';
COMMENT ON COLUMN public.timer_firings.outcome IS 'recorded, already_recorded, unchanged, or refused:<domain code> (the subject had moved on).';

-- ---------------------------------------------------------------------------
-- Matching (projection: matching)
-- ---------------------------------------------------------------------------

CREATE TABLE read.matching_experts (
    user_id       uuid    NOT NULL,
    tenant_id     text    NOT NULL,
    is_expert     boolean NOT NULL,
    available     boolean NOT NULL,
    skills        text[]  NOT NULL DEFAULT '{}',
    open_tickets  integer NOT NULL DEFAULT 0,
    position      bigint  NOT NULL,
    CONSTRAINT matching_experts_pkey PRIMARY KEY (user_id)
);
CREATE INDEX matching_experts_by_tenant ON read.matching_experts (tenant_id);

COMMENT ON TABLE read.matching_experts IS 'What the expert matcher knows of each user, in log order: expert role, availability, skills and load (projection: matching).';
COMMENT ON COLUMN read.matching_experts.user_id IS 'The user.';
COMMENT ON COLUMN read.matching_experts.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.matching_experts.is_expert IS 'Active and holding the expert role.';
COMMENT ON COLUMN read.matching_experts.available IS 'Available for new tickets.';
COMMENT ON COLUMN read.matching_experts.skills IS 'Skills, lowercase.';
COMMENT ON COLUMN read.matching_experts.open_tickets IS 'Tickets assigned to the expert and not rejected, resolved or closed (including assignments the matcher decided and the log has not confirmed yet).';
COMMENT ON COLUMN read.matching_experts.position IS 'Global position of the last event that changed the row.';

CREATE TABLE read.matching_tickets (
    ticket_id       uuid        NOT NULL,
    tenant_id       text        NOT NULL,
    required_skill  text        NOT NULL,
    state           text        NOT NULL,
    expert_id       uuid,
    excluded        uuid[]      NOT NULL DEFAULT '{}',
    waiting_since   timestamptz,
    position        bigint      NOT NULL,
    CONSTRAINT matching_tickets_pkey PRIMARY KEY (ticket_id)
);
CREATE INDEX matching_tickets_waiting ON read.matching_tickets (tenant_id, waiting_since) WHERE state = 'waiting';

COMMENT ON TABLE read.matching_tickets IS 'The unassigned queue and who holds each ticket, as the matcher sees it (projection: matching).';
COMMENT ON COLUMN read.matching_tickets.ticket_id IS 'The ticket.';
COMMENT ON COLUMN read.matching_tickets.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.matching_tickets.required_skill IS 'The skill it needs, lowercase.';
COMMENT ON COLUMN read.matching_tickets.state IS 'waiting (unassigned; matched when an expert becomes available), assigned, or done (resolved or closed).';
COMMENT ON COLUMN read.matching_tickets.expert_id IS 'The expert holding it (or who last held it).';
COMMENT ON COLUMN read.matching_tickets.excluded IS 'Experts who rejected it; never matched to it again.';
COMMENT ON COLUMN read.matching_tickets.waiting_since IS 'When it last started waiting (the queue is served oldest first).';
COMMENT ON COLUMN read.matching_tickets.position IS 'Global position of the last event that changed the row.';

-- ---------------------------------------------------------------------------
-- Notifications (projection: notifications) and their delivery
-- ---------------------------------------------------------------------------

CREATE TABLE read.notification_people (
    user_id    uuid    NOT NULL,
    tenant_id  text    NOT NULL,
    roles      text[]  NOT NULL DEFAULT '{}',
    active     boolean NOT NULL,
    position   bigint  NOT NULL,
    CONSTRAINT notification_people_pkey PRIMARY KEY (user_id)
);
CREATE INDEX notification_people_by_tenant ON read.notification_people (tenant_id);

COMMENT ON TABLE read.notification_people IS 'Registered users'' roles and activity, to address notifications to roles (projection: notifications).';
COMMENT ON COLUMN read.notification_people.user_id IS 'The user.';
COMMENT ON COLUMN read.notification_people.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.notification_people.roles IS 'Roles held.';
COMMENT ON COLUMN read.notification_people.active IS 'False once deactivated: no more notifications.';
COMMENT ON COLUMN read.notification_people.position IS 'Global position of the last event that changed the row.';

CREATE TABLE read.notification_preferences (
    user_id      uuid    NOT NULL,
    tenant_id    text    NOT NULL,
    kinds        text[]  NOT NULL DEFAULT '{}',
    in_app       boolean NOT NULL,
    email        text,
    webhook_url  text,
    position     bigint  NOT NULL,
    CONSTRAINT notification_preferences_pkey PRIMARY KEY (user_id)
);
CREATE INDEX notification_preferences_by_tenant ON read.notification_preferences (tenant_id);

COMMENT ON TABLE read.notification_preferences IS 'Each user''s notification preferences as last set; a user without a row gets every kind in-app only (projection: notifications).';
COMMENT ON COLUMN read.notification_preferences.user_id IS 'The user.';
COMMENT ON COLUMN read.notification_preferences.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.notification_preferences.kinds IS 'Kinds wanted: assignment, approval_waiting, approval_outcome, sla_breach, status_change, survey, renewal_due.';
COMMENT ON COLUMN read.notification_preferences.in_app IS 'Listed at GET /api/v1/me/notifications.';
COMMENT ON COLUMN read.notification_preferences.email IS 'Mailed to this address when set (personal data).';
COMMENT ON COLUMN read.notification_preferences.webhook_url IS 'POSTed, signed, to this URL when set.';
COMMENT ON COLUMN read.notification_preferences.position IS 'Global position of the notification_preferences.set event.';

CREATE TABLE read.notification_subjects (
    subject_id    uuid   NOT NULL,
    tenant_id     text   NOT NULL,
    subject_type  text   NOT NULL,
    owner_id      uuid,
    assignee_id   uuid,
    title         text   NOT NULL,
    position      bigint NOT NULL,
    CONSTRAINT notification_subjects_pkey PRIMARY KEY (subject_id)
);

COMMENT ON TABLE read.notification_subjects IS 'Who to tell about a ticket, lead or contract, and its name (projection: notifications).';
COMMENT ON COLUMN read.notification_subjects.subject_id IS 'The ticket, lead or contract.';
COMMENT ON COLUMN read.notification_subjects.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.notification_subjects.subject_type IS 'ticket, lead or contract.';
COMMENT ON COLUMN read.notification_subjects.owner_id IS 'A ticket''s customer; a lead''s or contract''s owner.';
COMMENT ON COLUMN read.notification_subjects.assignee_id IS 'The expert holding a ticket.';
COMMENT ON COLUMN read.notification_subjects.title IS 'The ticket''s or contract''s title, the lead''s company.';
COMMENT ON COLUMN read.notification_subjects.position IS 'Global position of the last event that changed the row.';

CREATE TABLE read.notifications (
    notification_id  uuid        NOT NULL,
    tenant_id        text        NOT NULL,
    user_id          uuid        NOT NULL,
    kind             text        NOT NULL,
    subject_type     text        NOT NULL,
    subject_id       uuid        NOT NULL,
    title            text        NOT NULL,
    body             text        NOT NULL,
    event_id         uuid        NOT NULL,
    event_type       text        NOT NULL,
    in_app           boolean     NOT NULL,
    created_at       timestamptz NOT NULL,
    position         bigint      NOT NULL,
    CONSTRAINT notifications_pkey PRIMARY KEY (notification_id)
);
CREATE INDEX notifications_by_user ON read.notifications (tenant_id, user_id, created_at DESC, notification_id) WHERE in_app;

COMMENT ON TABLE read.notifications IS 'One row per notification and person it is for (projection: notifications). Read marks are in notification_reads.';
COMMENT ON COLUMN read.notifications.notification_id IS 'Stable id: derived from the event and the person.';
COMMENT ON COLUMN read.notifications.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.notifications.user_id IS 'The person it is for.';
COMMENT ON COLUMN read.notifications.kind IS 'assignment, approval_waiting, approval_outcome, sla_breach, status_change, survey or renewal_due.';
COMMENT ON COLUMN read.notifications.subject_type IS 'ticket, lead, contract or approval.';
COMMENT ON COLUMN read.notifications.subject_id IS 'The entity it is about.';
COMMENT ON COLUMN read.notifications.title IS 'One line for people.';
COMMENT ON COLUMN read.notifications.body IS 'Details, with the API path of the subject.';
COMMENT ON COLUMN read.notifications.event_id IS 'The event that caused it.';
COMMENT ON COLUMN read.notifications.event_type IS 'Its type.';
COMMENT ON COLUMN read.notifications.in_app IS 'Listed in-app (the person''s preference when it was made).';
COMMENT ON COLUMN read.notifications.created_at IS 'When the event was recorded.';
COMMENT ON COLUMN read.notifications.position IS 'Global position of the event.';

CREATE TABLE read.notification_deliveries (
    delivery_id      uuid        NOT NULL,
    notification_id  uuid        NOT NULL,
    tenant_id        text        NOT NULL,
    user_id          uuid        NOT NULL,
    channel          text        NOT NULL,
    target           text        NOT NULL,
    created_at       timestamptz NOT NULL,
    position         bigint      NOT NULL,
    CONSTRAINT notification_deliveries_pkey PRIMARY KEY (delivery_id)
);
CREATE INDEX notification_deliveries_by_tenant ON read.notification_deliveries (tenant_id, created_at DESC);

COMMENT ON TABLE read.notification_deliveries IS 'One row per email or webhook to send for a notification (projection: notifications); its state is in notification_delivery_state.';
COMMENT ON COLUMN read.notification_deliveries.delivery_id IS 'Stable id, sent with every attempt (Chronicle-Delivery header, email Message-ID) so receivers can deduplicate.';
COMMENT ON COLUMN read.notification_deliveries.notification_id IS 'The notification (read.notifications).';
COMMENT ON COLUMN read.notification_deliveries.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.notification_deliveries.user_id IS 'The person it is for.';
COMMENT ON COLUMN read.notification_deliveries.channel IS 'email or webhook.';
COMMENT ON COLUMN read.notification_deliveries.target IS 'The email address (personal data) or the webhook URL.';
COMMENT ON COLUMN read.notification_deliveries.created_at IS 'When the causing event was recorded.';
COMMENT ON COLUMN read.notification_deliveries.position IS 'Global position of that event.';

CREATE TABLE public.notification_delivery_state (
    delivery_id      uuid        NOT NULL,
    tenant_id        text        NOT NULL,
    channel          text        NOT NULL,
    status           text        NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT notification_delivery_state_pkey PRIMARY KEY (delivery_id)
);
CREATE INDEX notification_delivery_state_due ON public.notification_delivery_state (status, next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX notification_delivery_state_by_tenant ON public.notification_delivery_state (tenant_id, status, updated_at DESC);

COMMENT ON TABLE public.notification_delivery_state IS 'What became of each delivery: opened (pending) by the notifications projection, then kept by the delivery worker.';
COMMENT ON COLUMN public.notification_delivery_state.delivery_id IS 'The delivery (read.notification_deliveries).';
COMMENT ON COLUMN public.notification_delivery_state.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN public.notification_delivery_state.channel IS 'email or webhook.';
COMMENT ON COLUMN public.notification_delivery_state.status IS 'pending (not tried yet), retrying (failed, tried again at next_attempt_at), delivered, or dead (gave up after the last attempt; a manager may retry it).';
COMMENT ON COLUMN public.notification_delivery_state.attempts IS 'Attempts made.';
COMMENT ON COLUMN public.notification_delivery_state.next_attempt_at IS 'When a retrying delivery is tried again.';
COMMENT ON COLUMN public.notification_delivery_state.last_error IS 'Why the last attempt failed.';
COMMENT ON COLUMN public.notification_delivery_state.delivered_at IS 'When it was delivered.';
COMMENT ON COLUMN public.notification_delivery_state.created_at IS 'When the causing event was recorded.';
COMMENT ON COLUMN public.notification_delivery_state.updated_at IS 'When the state last changed.';

CREATE TABLE public.notification_reads (
    notification_id  uuid        NOT NULL,
    tenant_id        text        NOT NULL,
    user_id          uuid        NOT NULL,
    read_at          timestamptz NOT NULL,
    CONSTRAINT notification_reads_pkey PRIMARY KEY (notification_id)
);

COMMENT ON TABLE public.notification_reads IS 'In-app notifications marked read by their person (POST /api/v1/me/notifications/{id}/read).';
COMMENT ON COLUMN public.notification_reads.notification_id IS 'The notification (read.notifications).';
COMMENT ON COLUMN public.notification_reads.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN public.notification_reads.user_id IS 'Who read it.';
COMMENT ON COLUMN public.notification_reads.read_at IS 'When it was marked read.';
