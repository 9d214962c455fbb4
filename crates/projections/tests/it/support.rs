//! Shared set-up: a store over a fresh database, commands, and a worker
//! driven step by step.

use std::sync::Arc;

use chronicle_commands::{CommandHandler, Context};
use chronicle_domain::ticket::{Contact, Ticket, TicketCommand};
use chronicle_domain::value::{Email, LongText, Priority, ShortText};
use chronicle_projections::runtime::{Options, Step, Worker};
use chronicle_projections::Projection;
use chronicle_store::postgres::PgEventStore;
use chronicle_store::{StreamId, TenantId};
use chronicle_testkit::TestDb;
use chrono::Utc;
use uuid::Uuid;

pub struct Env {
    pub db: TestDb,
    pub store: Arc<PgEventStore>,
    pub commands: CommandHandler<PgEventStore>,
}

impl Env {
    pub async fn new() -> Self {
        let db = TestDb::new().await;
        let store = Arc::new(PgEventStore::new(db.pool.clone()));
        Self {
            commands: CommandHandler::new(store.clone()),
            store,
            db,
        }
    }

    /// Takes the projection's lease (panics if someone else holds it).
    pub async fn worker(&self, projection: Arc<dyn Projection>) -> Worker {
        Worker::acquire(
            &self.db.pool.connect_options(),
            self.store.clone(),
            projection,
            Options::default(),
        )
        .await
        .unwrap()
        .expect("the lease is free")
    }

    /// Opens a ticket in `tenant`; returns its id.
    pub async fn open_ticket(&self, tenant: &str, title: &str) -> Uuid {
        open_ticket(&self.commands, tenant, title).await
    }

    /// Comments on a ticket.
    pub async fn comment(&self, tenant: &str, ticket: Uuid, body: &str) {
        comment(&self.commands, tenant, ticket, body).await
    }
}

fn ctx(tenant: &str) -> Context {
    Context::new(TenantId::parse(tenant).unwrap(), "tester")
}

/// Opens a ticket in `tenant`; returns its id.
pub async fn open_ticket(
    commands: &CommandHandler<PgEventStore>,
    tenant: &str,
    title: &str,
) -> Uuid {
    let id = Uuid::now_v7();
    let command = TicketCommand::Open {
        actor: Uuid::now_v7(),
        customer_id: Uuid::now_v7(),
        contact: Contact {
            name: ShortText::parse("name", "Ann".to_owned()).unwrap(),
            email: Email::parse("email", "ann@example.com").unwrap(),
        },
        product: ShortText::parse("product", "fibre".to_owned()).unwrap(),
        category: ShortText::parse("category", "outage".to_owned()).unwrap(),
        priority: Priority::P2,
        required_skill: ShortText::parse("skill", "networking".to_owned()).unwrap(),
        title: ShortText::parse("title", title.to_owned()).unwrap(),
        description: LongText::parse("description", "It is down.".to_owned()).unwrap(),
        at: Utc::now(),
    };
    commands
        .execute::<Ticket>(
            &StreamId::parse(id.to_string()).unwrap(),
            &ctx(tenant),
            &command,
        )
        .await
        .unwrap();
    id
}

/// Comments on a ticket.
pub async fn comment(
    commands: &CommandHandler<PgEventStore>,
    tenant: &str,
    ticket: Uuid,
    body: &str,
) {
    let command = TicketCommand::Comment {
        actor: Uuid::now_v7(),
        body: LongText::parse("body", body.to_owned()).unwrap(),
        comment_id: Uuid::now_v7(),
        at: Utc::now(),
    };
    commands
        .execute::<Ticket>(
            &StreamId::parse(ticket.to_string()).unwrap(),
            &ctx(tenant),
            &command,
        )
        .await
        .unwrap();
}

/// Steps the worker's live batches until there is nothing left to read.
pub async fn drain(worker: &mut Worker) -> usize {
    let mut applied = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match worker.process_batch().await.unwrap() {
            Step::Applied { events, .. } => applied += events,
            Step::Idle | Step::Failed => return applied,
            Step::Blocked => {
                assert!(std::time::Instant::now() < deadline, "blocked for 30 s");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            Step::Swapped { .. } => unreachable!("live batches do not swap"),
        }
    }
}
