-- Read models of the users projection: users, experts with their skills,
-- availability and current load, and the per-ticket bookkeeping the load
-- is counted from. Every table carries tenant_id; the API always filters
-- by it.

CREATE TABLE read.users (
    user_id         uuid        NOT NULL,
    tenant_id       text        NOT NULL,
    name            text,
    email           text,
    roles           text[]      NOT NULL DEFAULT '{}',
    status          text        NOT NULL,
    skills          text[]      NOT NULL DEFAULT '{}',
    available       boolean     NOT NULL DEFAULT false,
    registered_at   timestamptz NOT NULL,
    registered_by   uuid        NOT NULL,
    deactivated_at  timestamptz,
    updated_at      timestamptz NOT NULL,
    version         bigint      NOT NULL,
    position        bigint      NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (user_id)
);
CREATE INDEX users_by_registered ON read.users (tenant_id, registered_at DESC, user_id);
CREATE INDEX users_by_updated ON read.users (tenant_id, updated_at DESC, user_id);
CREATE INDEX users_by_status ON read.users (tenant_id, status, registered_at DESC);
CREATE INDEX users_by_email ON read.users (tenant_id, lower(email));
CREATE INDEX users_roles ON read.users USING gin (roles);

COMMENT ON TABLE read.users IS 'One row per user of a tenant, as of their last event (projection: users).';
COMMENT ON COLUMN read.users.user_id IS 'The user (their stream id; the id tokens and other events know them by).';
COMMENT ON COLUMN read.users.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.users.name IS 'Full name (personal data).';
COMMENT ON COLUMN read.users.email IS 'Email address as registered (personal data); compare with lower(email).';
COMMENT ON COLUMN read.users.roles IS 'Roles held: customer, expert, approver, sales, manager, auditor, analyst, admin.';
COMMENT ON COLUMN read.users.status IS 'active or deactivated.';
COMMENT ON COLUMN read.users.skills IS 'Expert skills, as last set (kept when the expert role is taken away).';
COMMENT ON COLUMN read.users.available IS 'Whether the user is available as an expert for new tickets.';
COMMENT ON COLUMN read.users.registered_at IS 'When the user was registered.';
COMMENT ON COLUMN read.users.registered_by IS 'The admin who registered the user.';
COMMENT ON COLUMN read.users.deactivated_at IS 'When the user was deactivated; NULL while active.';
COMMENT ON COLUMN read.users.updated_at IS 'Time of the last event.';
COMMENT ON COLUMN read.users.version IS 'Stream version after the last event (the ETag of the user).';
COMMENT ON COLUMN read.users.position IS 'Global position of the last event.';

CREATE TABLE read.experts (
    expert_id     uuid        NOT NULL,
    tenant_id     text        NOT NULL,
    skills        text[]      NOT NULL DEFAULT '{}',
    availability  text        NOT NULL,
    open_tickets  integer     NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL,
    position      bigint      NOT NULL,
    CONSTRAINT experts_pkey PRIMARY KEY (expert_id)
);
CREATE INDEX experts_by_load ON read.experts (tenant_id, open_tickets, expert_id);
CREATE INDEX experts_by_updated ON read.experts (tenant_id, updated_at DESC, expert_id);
CREATE INDEX experts_by_availability ON read.experts (tenant_id, availability, open_tickets);
CREATE INDEX experts_skills ON read.experts USING gin (skills);

COMMENT ON TABLE read.experts IS 'One row per active user holding the expert role: what matching needs (projection: users).';
COMMENT ON COLUMN read.experts.expert_id IS 'The expert (their user id; see read.users).';
COMMENT ON COLUMN read.experts.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.experts.skills IS 'Skills, as set (distinct ignoring case); match with skills && ARRAY[...].';
COMMENT ON COLUMN read.experts.availability IS 'available or unavailable for new tickets.';
COMMENT ON COLUMN read.experts.open_tickets IS 'Current load: tickets assigned to the expert and not rejected or resolved (a reopened ticket counts again).';
COMMENT ON COLUMN read.experts.updated_at IS 'Time of the last event that changed the row: the user''s, or a ticket''s that moved the load.';
COMMENT ON COLUMN read.experts.position IS 'Global position of that event.';

CREATE TABLE read.expert_tickets (
    ticket_id   uuid        NOT NULL,
    tenant_id   text        NOT NULL,
    expert_id   uuid        NOT NULL,
    open        boolean     NOT NULL,
    updated_at  timestamptz NOT NULL,
    position    bigint      NOT NULL,
    CONSTRAINT expert_tickets_pkey PRIMARY KEY (ticket_id)
);
CREATE INDEX expert_tickets_open_by_expert ON read.expert_tickets (tenant_id, expert_id) WHERE open;

COMMENT ON TABLE read.expert_tickets IS 'Bookkeeping of experts'' load: per ticket ever assigned, the expert it is (or was last) with and whether it counts against them (projection: users).';
COMMENT ON COLUMN read.expert_tickets.ticket_id IS 'The ticket.';
COMMENT ON COLUMN read.expert_tickets.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.expert_tickets.expert_id IS 'The expert the ticket was last assigned to (or reopened with).';
COMMENT ON COLUMN read.expert_tickets.open IS 'True while the ticket counts in the expert''s open_tickets: assigned, accepted or in progress.';
COMMENT ON COLUMN read.expert_tickets.updated_at IS 'Time of the last ticket event that changed the row.';
COMMENT ON COLUMN read.expert_tickets.position IS 'Global position of that event.';
