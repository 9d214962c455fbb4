//! The command cycle against the in-memory store and PostgreSQL, with the
//! ticket aggregate as the example.

use std::sync::Arc;

use chronicle_commands::{CommandError, CommandHandler, Context, EventIds, Until};
use chronicle_domain::ticket::{Contact, Ticket, TicketCommand};
use chronicle_domain::value::{Email, LongText, Priority, ShortText};
use chronicle_domain::ErrorCode;
use chronicle_store::memory::MemoryEventStore;
use chronicle_store::postgres::PgEventStore;
use chronicle_store::{Direction, EventStore, StreamId, TenantId};
use chronicle_testkit::TestDb;
use chrono::{TimeZone, Utc};
use uuid::Uuid;

fn at(minute: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0).unwrap()
}

fn open(customer: Uuid) -> TicketCommand {
    TicketCommand::Open {
        actor: customer,
        customer_id: customer,
        contact: Contact {
            name: ShortText::parse("name", "Ann Customer").unwrap(),
            email: Email::parse("email", "ann@example.com").unwrap(),
        },
        product: ShortText::parse("product", "fibre-1000").unwrap(),
        category: ShortText::parse("category", "connectivity").unwrap(),
        priority: Priority::P2,
        required_skill: ShortText::parse("skill", "networking").unwrap(),
        title: ShortText::parse("title", "Packet loss").unwrap(),
        description: LongText::parse("description", "Loss of 2-5 % since Monday").unwrap(),
        at: at(0),
    }
}

fn comment(actor: Uuid, text: &str) -> TicketCommand {
    TicketCommand::Comment {
        actor,
        comment_id: Uuid::now_v7(),
        body: LongText::parse("body", text).unwrap(),
        at: at(1),
    }
}

fn ctx(tenant: &str) -> Context {
    Context::new(TenantId::parse(tenant).unwrap(), "user-1")
}

fn new_stream() -> StreamId {
    StreamId::parse(Uuid::now_v7().to_string()).unwrap()
}

async fn creates_then_acts_and_folds<S: EventStore + ?Sized>(handler: CommandHandler<S>) {
    let customer = Uuid::now_v7();
    let id = new_stream();
    let created = handler
        .execute::<Ticket>(&id, &ctx("acme"), &open(customer))
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.event_ids.len(), 1);
    let escalate = TicketCommand::ChangePriority {
        actor: customer,
        priority: Priority::P1,
        at: at(1),
    };
    let commented = handler
        .execute::<Ticket>(&id, &ctx("acme"), &escalate)
        .await
        .unwrap();
    assert_eq!(commented.version, 2);
    assert!(commented.position > created.position);

    let tenant = TenantId::parse("acme").unwrap();
    let loaded = handler.load::<Ticket>(&tenant, &id).await.unwrap().unwrap();
    assert_eq!(loaded.version, 2);
    assert_eq!(loaded.position, commented.position);
    let at_one = handler
        .load_until::<Ticket>(&tenant, &id, Until::Version(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at_one.version, 1);
    assert_eq!(
        at_one.state.priority,
        Some(Priority::P2),
        "the state as it was at version 1"
    );
    assert_eq!(loaded.state.priority, Some(Priority::P1));
    let before = handler
        .load_until::<Ticket>(
            &tenant,
            &id,
            Until::Time(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()),
        )
        .await
        .unwrap();
    assert!(before.is_none(), "nothing was recorded before 2000");

    // Metadata travels with the events.
    let stored = handler
        .store()
        .read_stream(&id, 1, Direction::Forward, 10)
        .await
        .unwrap();
    assert_eq!(stored[0].metadata.actor.as_deref(), Some("user-1"));
    assert_eq!(stored[0].metadata.source.as_deref(), Some("api"));
}

async fn refusals<S: EventStore + ?Sized>(handler: CommandHandler<S>) {
    let customer = Uuid::now_v7();
    let id = new_stream();
    handler
        .execute::<Ticket>(&id, &ctx("acme"), &open(customer))
        .await
        .unwrap();

    // The domain says no: its code comes through.
    match handler
        .execute::<Ticket>(&id, &ctx("acme"), &open(customer))
        .await
    {
        Err(CommandError::Domain(e)) => assert_eq!(e.code(), "ticket.already_exists"),
        other => panic!("expected a domain refusal, got {other:?}"),
    }
    // Another tenant cannot see or touch it.
    let other = handler
        .execute::<Ticket>(&id, &ctx("globex"), &comment(customer, "hi"))
        .await;
    assert!(matches!(other, Err(CommandError::NotFound)), "{other:?}");
    assert!(handler
        .load::<Ticket>(&TenantId::parse("globex").unwrap(), &id)
        .await
        .unwrap()
        .is_none());
    // If-Match with a stale version: 412 and nothing written.
    let mut stale = ctx("acme");
    stale.if_match = Some(0);
    let r = handler
        .execute::<Ticket>(&id, &stale, &comment(customer, "late"))
        .await;
    assert!(
        matches!(
            r,
            Err(CommandError::PreconditionFailed {
                expected: 0,
                actual: 1
            })
        ),
        "{r:?}"
    );
    let mut current = ctx("acme");
    current.if_match = Some(1);
    assert_eq!(
        handler
            .execute::<Ticket>(&id, &current, &comment(customer, "ok"))
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(handler.store().stream_version(&id).await.unwrap(), Some(2));
}

/// Concurrent commands without If-Match are re-decided, never lost.
async fn concurrent_commands_are_all_applied<S: EventStore + ?Sized>(handler: CommandHandler<S>) {
    let customer = Uuid::now_v7();
    let id = new_stream();
    handler
        .execute::<Ticket>(&id, &ctx("acme"), &open(customer))
        .await
        .unwrap();
    let tasks = (0..50).map(|i| {
        let (handler, id) = (handler.clone(), id.clone());
        async move {
            handler
                .execute::<Ticket>(
                    &id,
                    &ctx("acme"),
                    &comment(customer, &format!("comment {i}")),
                )
                .await
        }
    });
    let results = futures::future::join_all(tasks).await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    let history = handler
        .store()
        .read_stream(&id, 1, Direction::Forward, 100)
        .await
        .unwrap();
    assert_eq!(history.len(), 51);
    let mut versions: Vec<u64> = results
        .iter()
        .map(|r| r.as_ref().unwrap().version)
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (2..=51).collect::<Vec<_>>());
}

/// A reaction re-issued with the same derived ids changes nothing twice.
async fn derived_ids_make_reactions_idempotent<S: EventStore + ?Sized>(handler: CommandHandler<S>) {
    let customer = Uuid::now_v7();
    let id = new_stream();
    let trigger = Uuid::now_v7();
    let mut reaction = ctx("acme");
    reaction.event_ids = EventIds::DerivedFrom(trigger);
    reaction.source = "test-reaction";
    let command = comment(customer, "from a reaction");
    handler
        .execute::<Ticket>(&id, &ctx("acme"), &open(customer))
        .await
        .unwrap();
    let first = handler
        .execute::<Ticket>(&id, &reaction, &command)
        .await
        .unwrap();
    let again = handler
        .execute::<Ticket>(&id, &reaction, &command)
        .await
        .unwrap();
    assert_eq!(again.event_ids, first.event_ids);
    assert!(again.already_recorded, "the replay wrote nothing");
    assert_eq!(handler.store().stream_version(&id).await.unwrap(), Some(2));
}

mod memory {
    use super::*;

    fn handler() -> CommandHandler<MemoryEventStore> {
        CommandHandler::new(Arc::new(MemoryEventStore::new()))
    }

    #[tokio::test]
    async fn creates_then_acts_and_folds() {
        super::creates_then_acts_and_folds(handler()).await;
    }

    #[tokio::test]
    async fn refusals() {
        super::refusals(handler()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_commands_are_all_applied() {
        super::concurrent_commands_are_all_applied(handler()).await;
    }

    #[tokio::test]
    async fn derived_ids_make_reactions_idempotent() {
        super::derived_ids_make_reactions_idempotent(handler()).await;
    }
}

mod postgres {
    use super::*;

    async fn handler() -> (TestDb, CommandHandler<PgEventStore>) {
        let db = TestDb::new().await;
        let handler = CommandHandler::new(Arc::new(PgEventStore::new(db.pool.clone())));
        (db, handler)
    }

    #[tokio::test]
    async fn creates_then_acts_and_folds() {
        let (_db, h) = handler().await;
        super::creates_then_acts_and_folds(h).await;
    }

    #[tokio::test]
    async fn refusals() {
        let (_db, h) = handler().await;
        super::refusals(h).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_commands_are_all_applied() {
        let (_db, h) = handler().await;
        super::concurrent_commands_are_all_applied(h).await;
    }

    #[tokio::test]
    async fn derived_ids_make_reactions_idempotent() {
        let (_db, h) = handler().await;
        super::derived_ids_make_reactions_idempotent(h).await;
    }
}
