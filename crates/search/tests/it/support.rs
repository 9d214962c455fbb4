//! Events into a store, and an index beside it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_domain::event::{encode, DomainEvent, Encoded};
use chronicle_search::doc::Kind;
use chronicle_search::index::{Indexer, Reader, Snapshot};
use chronicle_search::query::{
    self, ContractAccess, Request, Results, Scope, StatsCache, TicketAccess,
};
use chronicle_store::postgres::PgEventStore;
use chronicle_store::{
    EventStore, ExpectedVersion, Metadata, NewEvent, StreamId, StreamRef, TenantId, TypeName,
};
use uuid::Uuid;

/// Appends `events` to the stream `stream_type`/`id`; returns the position
/// of the last.
pub async fn append(
    store: &PgEventStore,
    tenant: &str,
    stream_type: &str,
    id: Uuid,
    events: Vec<Encoded>,
) -> u64 {
    let stream = StreamRef {
        tenant: TenantId::parse(tenant).unwrap(),
        stream_type: TypeName::parse(stream_type).unwrap(),
        id: StreamId::parse(id.to_string()).unwrap(),
    };
    let events: Vec<NewEvent> = events
        .into_iter()
        .map(|e| NewEvent {
            event_id: Uuid::now_v7(),
            event_type: TypeName::parse(e.event_type).unwrap(),
            schema_version: e.schema_version,
            data: e.data,
            metadata: Metadata::default(),
            personal: None,
        })
        .collect();
    store
        .append(&stream, ExpectedVersion::Any, &events)
        .await
        .unwrap()
        .last_position()
}

pub fn enc<E: DomainEvent>(event: E) -> Encoded {
    encode(&event)
}

/// Refreshes `reader` until it reflects `position` (10 s at most).
pub async fn caught_up(reader: &Arc<Reader>, position: u64) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = reader.clone();
        let _ = tokio::task::spawn_blocking(move || r.refresh())
            .await
            .unwrap();
        if let Some(s) = reader.snapshot().filter(|s| s.position >= position) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the index did not reach position {position} (at {})",
            reader.position()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Applies the whole log to `indexer`, committing after every `batch`
/// events (a segment each); returns the number of commits.
pub async fn commit_in_batches(
    events: &PgEventStore,
    indexer: &mut Indexer,
    batch: usize,
) -> usize {
    let mut commits = 0;
    loop {
        let read = events
            .read_batch(indexer.applied(), batch)
            .await
            .unwrap()
            .events;
        if read.is_empty() {
            return commits;
        }
        indexer.apply(&read).unwrap();
        indexer.commit().unwrap();
        commits += 1;
    }
}

/// Refreshes `reader` until its snapshot holds a single segment (within
/// 30 s), and returns that snapshot.
pub async fn one_segment(reader: &Arc<Reader>) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = reader.clone();
        tokio::task::spawn_blocking(move || r.refresh())
            .await
            .unwrap()
            .unwrap();
        let snapshot = reader.snapshot().unwrap();
        let segments = snapshot.searcher.segment_readers().len();
        if segments == 1 {
            return snapshot;
        }
        assert!(Instant::now() < deadline, "still {segments} segments");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sees everything of `tenant`.
pub fn admin(tenant: &str) -> Scope {
    Scope {
        tenant: tenant.to_owned(),
        contracts: ContractAccess::All,
        tickets: TicketAccess::All,
    }
}

pub fn search(snapshot: &Snapshot, scope: &Scope, q: &str) -> Results {
    search_with(snapshot, scope, q, &[], &[])
}

/// The first `limit` hits only.
pub fn top(snapshot: &Snapshot, scope: &Scope, q: &str, limit: usize) -> Results {
    query::search(
        snapshot,
        &StatsCache::default(),
        scope,
        &Request {
            q: q.to_owned(),
            limit,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{q}: {e}"))
}

pub fn search_with(
    snapshot: &Snapshot,
    scope: &Scope,
    q: &str,
    kinds: &[Kind],
    statuses: &[&str],
) -> Results {
    query::search(
        snapshot,
        &StatsCache::default(),
        scope,
        &Request {
            q: q.to_owned(),
            kinds: kinds.to_vec(),
            statuses: statuses.iter().map(|s| s.to_string()).collect(),
            limit: 100,
            offset: 0,
        },
    )
    .unwrap_or_else(|e| panic!("{q}: {e}"))
}

pub fn titles(results: &Results) -> Vec<String> {
    results.hits.iter().map(|h| h.title.clone()).collect()
}

pub fn store(db: &chronicle_testkit::TestDb) -> Arc<PgEventStore> {
    Arc::new(PgEventStore::new(db.pool.clone()))
}

/// Domain events with defaults for what the tests do not look at.
pub mod ev {
    use chronicle_domain::contract::{
        Contact, ContractActivated, ContractAmended, ContractDrafted, ContractEvent,
        ContractShared, ContractTerminated, ContractUnshared, Counterparty, Grantee, Party,
        PartyKind,
    };
    use chronicle_domain::event::Encoded;
    use chronicle_domain::knowledge::{
        ArticlePublished, ArticleRetired, ArticleRevised, KnowledgeEvent, Tags,
    };
    use chronicle_domain::ticket::{
        self, TicketClosed, TicketCommented, TicketEvent, TicketOpened, TicketStatus,
    };
    use chronicle_domain::value::{Currency, Email, LongText, Money, Priority, ShortText};
    use chrono::{NaiveDate, Utc};
    use uuid::Uuid;

    use super::enc;

    fn short(s: &str) -> ShortText {
        ShortText::parse("t", s).unwrap()
    }

    fn long(s: &str) -> LongText {
        LongText::parse("t", s).unwrap()
    }

    pub fn drafted(title: &str, counterparty: &str, body: &str, owner: Uuid) -> Encoded {
        drafted_between(
            title,
            counterparty,
            body,
            owner,
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        )
    }

    pub fn drafted_between(
        title: &str,
        counterparty: &str,
        body: &str,
        owner: Uuid,
        start_date: NaiveDate,
        end_date: NaiveDate,
    ) -> Encoded {
        enc(ContractEvent::Drafted(ContractDrafted {
            title: short(title),
            parties: vec![Party {
                name: short(counterparty),
                kind: PartyKind::Organisation,
                role: short("customer"),
            }],
            counterparty: Counterparty {
                organisation: short(counterparty),
                contact: Contact {
                    name: short("Hank Scorpio"),
                    email: Email::parse("e", "hank@globex.example").unwrap(),
                },
            },
            value: Money {
                amount_minor: 12_000_000,
                currency: Currency::parse("c", "EUR").unwrap(),
            },
            start_date,
            end_date,
            body: long(body),
            owner,
            at: Utc::now(),
        }))
    }

    pub fn amended(version: u32, body: &str) -> Encoded {
        enc(ContractEvent::Amended(ContractAmended {
            version,
            terms: None,
            body: Some(long(body)),
            by: Uuid::now_v7(),
            at: Utc::now(),
        }))
    }

    pub fn shared(grantee: Grantee) -> Encoded {
        enc(ContractEvent::Shared(ContractShared {
            grantee,
            by: Uuid::now_v7(),
            at: Utc::now(),
        }))
    }

    pub fn unshared(grantee: Grantee) -> Encoded {
        enc(ContractEvent::Unshared(ContractUnshared {
            grantee,
            by: Uuid::now_v7(),
            at: Utc::now(),
        }))
    }

    pub fn activated() -> Encoded {
        enc(ContractEvent::Activated(ContractActivated {
            at: Utc::now(),
        }))
    }

    pub fn terminated() -> Encoded {
        enc(ContractEvent::Terminated(ContractTerminated {
            reason: long("breach"),
            by: Uuid::now_v7(),
            at: Utc::now(),
        }))
    }

    pub fn published(title: &str, body: &str, tags: &[&str]) -> Encoded {
        enc(KnowledgeEvent::Published(ArticlePublished {
            title: short(title),
            body: long(body),
            tags: Tags::new(tags.iter().map(|t| short(t))),
            product: short("SmartHub 3"),
            author_id: Uuid::now_v7(),
            version: 1,
            at: Utc::now(),
        }))
    }

    pub fn revised(version: u32, title: &str, body: &str) -> Encoded {
        enc(KnowledgeEvent::Revised(ArticleRevised {
            title: short(title),
            body: long(body),
            tags: Tags::new([short("revised")]),
            version,
            by: Uuid::now_v7(),
            at: Utc::now(),
        }))
    }

    pub fn retired(version: u32) -> Encoded {
        enc(KnowledgeEvent::Retired(ArticleRetired {
            reason: None,
            version,
            by: Uuid::now_v7(),
            at: Utc::now(),
        }))
    }

    pub fn opened(title: &str, description: &str, customer: Uuid) -> Encoded {
        enc(TicketEvent::Opened(TicketOpened {
            customer_id: customer,
            contact: ticket::Contact {
                name: short("Ann"),
                email: Email::parse("e", "ann@example.com").unwrap(),
            },
            product: short("fibre-1000"),
            category: short("connectivity"),
            priority: Priority::P2,
            required_skill: short("networking"),
            title: short(title),
            description: long(description),
            opened_by: customer,
            status: TicketStatus::Open,
            at: Utc::now(),
        }))
    }

    pub fn commented(body: &str) -> Encoded {
        enc(TicketEvent::Commented(TicketCommented {
            comment_id: Uuid::now_v7(),
            author_id: Uuid::now_v7(),
            body: long(body),
            at: Utc::now(),
        }))
    }

    pub fn closed() -> Encoded {
        enc(TicketEvent::Closed(TicketClosed {
            by: Uuid::now_v7(),
            status: TicketStatus::Closed,
            at: Utc::now(),
        }))
    }
}
