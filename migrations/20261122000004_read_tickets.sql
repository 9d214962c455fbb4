-- Read models of the tickets projection. Every table carries tenant_id; the
-- API always filters by it.

CREATE TABLE read.tickets (
    ticket_id           uuid        NOT NULL,
    tenant_id           text        NOT NULL,
    customer_id         uuid        NOT NULL,
    contact_name        text,
    contact_email       text,
    product             text        NOT NULL,
    category            text        NOT NULL,
    priority            text        NOT NULL,
    required_skill      text        NOT NULL,
    title               text        NOT NULL,
    description         text        NOT NULL,
    status              text        NOT NULL,
    expert_id           uuid,
    rejected_by         uuid[]      NOT NULL DEFAULT '{}',
    opened_by           uuid        NOT NULL,
    opened_at           timestamptz NOT NULL,
    first_assigned_at   timestamptz,
    first_response_at   timestamptz,
    resolved_at         timestamptz,
    resolution          text,
    closed_at           timestamptz,
    assignment_count    integer     NOT NULL DEFAULT 0,
    reopen_count        integer     NOT NULL DEFAULT 0,
    comment_count       integer     NOT NULL DEFAULT 0,
    escalation_level    smallint    NOT NULL DEFAULT 0,
    sla_breached        text[]      NOT NULL DEFAULT '{}',
    survey_id           uuid,
    survey_score        smallint,
    survey_comment      text,
    updated_at          timestamptz NOT NULL,
    version             bigint      NOT NULL,
    position            bigint      NOT NULL,
    CONSTRAINT tickets_pkey PRIMARY KEY (ticket_id)
);
CREATE INDEX tickets_by_opened ON read.tickets (tenant_id, opened_at DESC, ticket_id);
CREATE INDEX tickets_by_status ON read.tickets (tenant_id, status, opened_at DESC);
CREATE INDEX tickets_by_expert ON read.tickets (tenant_id, expert_id, status) WHERE expert_id IS NOT NULL;
CREATE INDEX tickets_by_customer ON read.tickets (tenant_id, customer_id, opened_at DESC);
CREATE INDEX tickets_by_priority ON read.tickets (tenant_id, priority, opened_at DESC);

COMMENT ON TABLE read.tickets IS 'One row per support ticket, as of its last event (projection: tickets).';
COMMENT ON COLUMN read.tickets.ticket_id IS 'The ticket (its stream id).';
COMMENT ON COLUMN read.tickets.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.tickets.customer_id IS 'The customer the ticket is for.';
COMMENT ON COLUMN read.tickets.contact_name IS 'Contact name given on opening (personal data).';
COMMENT ON COLUMN read.tickets.contact_email IS 'Contact email given on opening (personal data).';
COMMENT ON COLUMN read.tickets.product IS 'Product the ticket is about.';
COMMENT ON COLUMN read.tickets.category IS 'Ticket category, e.g. outage, billing.';
COMMENT ON COLUMN read.tickets.priority IS 'Current priority, P1 (highest) to P4.';
COMMENT ON COLUMN read.tickets.required_skill IS 'Skill an expert needs to take the ticket.';
COMMENT ON COLUMN read.tickets.title IS 'Short title.';
COMMENT ON COLUMN read.tickets.description IS 'Description given on opening.';
COMMENT ON COLUMN read.tickets.status IS 'open, assigned, accepted, in_progress, resolved or closed.';
COMMENT ON COLUMN read.tickets.expert_id IS 'The expert currently holding the ticket; NULL while open.';
COMMENT ON COLUMN read.tickets.rejected_by IS 'Experts who rejected the ticket (never assigned to it again).';
COMMENT ON COLUMN read.tickets.opened_by IS 'User who opened the ticket (the customer, or a manager for them).';
COMMENT ON COLUMN read.tickets.opened_at IS 'When the ticket was opened.';
COMMENT ON COLUMN read.tickets.first_assigned_at IS 'When an expert was first assigned.';
COMMENT ON COLUMN read.tickets.first_response_at IS 'First response: the assigned expert accepting or commenting.';
COMMENT ON COLUMN read.tickets.resolved_at IS 'When the ticket was last resolved; NULL after a reopen.';
COMMENT ON COLUMN read.tickets.resolution IS 'The last resolution text.';
COMMENT ON COLUMN read.tickets.closed_at IS 'When the ticket was closed.';
COMMENT ON COLUMN read.tickets.assignment_count IS 'How many times an expert was assigned (rows in ticket_assignments).';
COMMENT ON COLUMN read.tickets.reopen_count IS 'How many times the ticket was reopened.';
COMMENT ON COLUMN read.tickets.comment_count IS 'Number of comments.';
COMMENT ON COLUMN read.tickets.escalation_level IS 'Current escalation level; 0 when never escalated.';
COMMENT ON COLUMN read.tickets.sla_breached IS 'SLA stages breached: assign, first_response, resolve.';
COMMENT ON COLUMN read.tickets.survey_id IS 'The satisfaction survey sent after resolution.';
COMMENT ON COLUMN read.tickets.survey_score IS 'The customer''s survey score, 1 to 5.';
COMMENT ON COLUMN read.tickets.survey_comment IS 'The customer''s survey comment.';
COMMENT ON COLUMN read.tickets.updated_at IS 'Time of the last event.';
COMMENT ON COLUMN read.tickets.version IS 'Stream version after the last event (the ETag of the ticket).';
COMMENT ON COLUMN read.tickets.position IS 'Global position of the last event.';

CREATE TABLE read.ticket_assignments (
    ticket_id    uuid        NOT NULL,
    seq          integer     NOT NULL,
    tenant_id    text        NOT NULL,
    expert_id    uuid        NOT NULL,
    assigned_by  text        NOT NULL,
    manager_id   uuid,
    assigned_at  timestamptz NOT NULL,
    accepted_at  timestamptz,
    ended_at     timestamptz,
    end_reason   text,
    CONSTRAINT ticket_assignments_pkey PRIMARY KEY (ticket_id, seq)
);
CREATE INDEX ticket_assignments_by_expert ON read.ticket_assignments (tenant_id, expert_id, assigned_at);
CREATE INDEX ticket_assignments_open ON read.ticket_assignments (ticket_id) WHERE ended_at IS NULL;

COMMENT ON TABLE read.ticket_assignments IS 'Assignment history: one row per time an expert was assigned to a ticket (projection: tickets).';
COMMENT ON COLUMN read.ticket_assignments.ticket_id IS 'The ticket.';
COMMENT ON COLUMN read.ticket_assignments.seq IS '1 for the first assignment of the ticket, then 2, ...';
COMMENT ON COLUMN read.ticket_assignments.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.ticket_assignments.expert_id IS 'The assigned expert.';
COMMENT ON COLUMN read.ticket_assignments.assigned_by IS 'matching (automatic) or manager.';
COMMENT ON COLUMN read.ticket_assignments.manager_id IS 'The manager who assigned, when assigned_by is manager.';
COMMENT ON COLUMN read.ticket_assignments.assigned_at IS 'When the expert was assigned.';
COMMENT ON COLUMN read.ticket_assignments.accepted_at IS 'When the expert accepted; NULL if they never did.';
COMMENT ON COLUMN read.ticket_assignments.ended_at IS 'When the assignment ended; NULL while it lasts.';
COMMENT ON COLUMN read.ticket_assignments.end_reason IS 'rejected (the expert refused) or closed (the ticket was closed).';

CREATE TABLE read.ticket_comments (
    comment_id  uuid        NOT NULL,
    ticket_id   uuid        NOT NULL,
    tenant_id   text        NOT NULL,
    author_id   uuid        NOT NULL,
    body        text        NOT NULL,
    at          timestamptz NOT NULL,
    position    bigint      NOT NULL,
    CONSTRAINT ticket_comments_pkey PRIMARY KEY (comment_id)
);
CREATE INDEX ticket_comments_by_ticket ON read.ticket_comments (ticket_id, position);

COMMENT ON TABLE read.ticket_comments IS 'Comments on tickets, oldest first by position (projection: tickets).';
COMMENT ON COLUMN read.ticket_comments.comment_id IS 'The comment.';
COMMENT ON COLUMN read.ticket_comments.ticket_id IS 'The ticket commented on.';
COMMENT ON COLUMN read.ticket_comments.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.ticket_comments.author_id IS 'Who wrote the comment.';
COMMENT ON COLUMN read.ticket_comments.body IS 'The comment text.';
COMMENT ON COLUMN read.ticket_comments.at IS 'When the comment was written.';
COMMENT ON COLUMN read.ticket_comments.position IS 'Global position of the event that recorded it.';
