//! The contracts projection: the current contract with its shares, and a
//! row per contract version; old `contract.drafted` v1 events are upcast.

// Rows are read back as tuples of their columns.
#![allow(clippy::type_complexity)]

use std::sync::Arc;

use chronicle_commands::Context;
use chronicle_domain::contract::{
    event_specs, Contact, Contract, ContractCommand, Counterparty, DraftContract, Grantee, Party,
    PartyKind, Terms,
};
use chronicle_domain::value::{Currency, Email, LongText, Money, ShortText};
use chronicle_projections::read::contracts::Contracts;
use chronicle_projections::status;
use chronicle_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId, StreamRef};
use chronicle_store::{TenantId, TypeName};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::support::{drain, Env};

fn short(s: &str) -> ShortText {
    ShortText::parse("text", s.to_owned()).unwrap()
}

fn long(s: &str) -> LongText {
    LongText::parse("text", s.to_owned()).unwrap()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn time(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn eur(amount_minor: i64) -> Money {
    Money::new("value", amount_minor, Currency::parse("c", "EUR").unwrap()).unwrap()
}

async fn run(env: &Env, tenant: &str, id: Uuid, command: ContractCommand) {
    env.commands
        .execute::<Contract>(
            &StreamId::parse(id.to_string()).unwrap(),
            &Context::new(TenantId::parse(tenant).unwrap(), "tester"),
            &command,
        )
        .await
        .unwrap();
}

fn draft(owner: Uuid) -> ContractCommand {
    ContractCommand::Draft(DraftContract {
        title: short("Managed WAN 2026"),
        parties: vec![
            Party {
                name: short("Chronicle Telecom Ltd"),
                kind: PartyKind::Organisation,
                role: short("supplier"),
            },
            Party {
                name: short("Sofia Marquez"),
                kind: PartyKind::Person,
                role: short("guarantor"),
            },
        ],
        counterparty: Counterparty {
            organisation: short("Northwind Logistics GmbH"),
            contact: Contact {
                name: short("Jonas Weber"),
                email: Email::parse("email", "jonas@northwind.example").unwrap(),
            },
        },
        value: eur(1_000_000),
        start_date: date("2026-01-01"),
        end_date: date("2026-12-31"),
        body: long("1. Scope."),
        owner,
        at: time("2025-11-01T10:00:00Z"),
    })
}

#[tokio::test]
async fn a_contract_keeps_its_current_state_shares_and_every_version() {
    let env = Env::new().await;
    let (id, owner, reader) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    use ContractCommand as C;
    for command in [
        draft(owner),
        C::Share {
            grantee: Grantee::User(reader),
            actor: owner,
            at: time("2025-11-01T10:05:00Z"),
        },
        C::Share {
            grantee: Grantee::Role("legal".into()),
            actor: owner,
            at: time("2025-11-01T10:06:00Z"),
        },
        C::Amend {
            terms: Some(Terms {
                value: eur(1_200_000),
                start_date: date("2026-02-01"),
                end_date: date("2027-01-31"),
            }),
            body: None,
            actor: owner,
            at: time("2025-11-02T10:00:00Z"),
        },
        C::SubmitForApproval {
            approval_id: first,
            actor: owner,
            at: time("2025-11-03T10:00:00Z"),
        },
        C::Reject {
            approval_id: first,
            reason: long("Cap the liability"),
            at: time("2025-11-04T10:00:00Z"),
        },
        C::Amend {
            terms: None,
            body: Some(long("1. Scope. 9. Liability capped.")),
            actor: reader,
            at: time("2025-11-05T10:00:00Z"),
        },
        C::SubmitForApproval {
            approval_id: second,
            actor: owner,
            at: time("2025-11-06T10:00:00Z"),
        },
        C::Approve {
            approval_id: second,
            at: time("2025-11-07T10:00:00Z"),
        },
        C::Sign {
            signatory_name: short("Jonas Weber"),
            actor: owner,
            at: time("2025-11-08T10:00:00Z"),
        },
        C::Activate {
            at: time("2026-02-01T00:00:05Z"),
        },
        C::Renew {
            new_end_date: date("2028-01-31"),
            actor: owner,
            at: time("2026-10-01T10:00:00Z"),
        },
        C::Unshare {
            grantee: Grantee::User(reader),
            actor: owner,
            at: time("2026-10-02T10:00:00Z"),
        },
        C::Terminate {
            reason: long("Warehouse closed"),
            actor: owner,
            at: time("2027-03-01T10:00:00Z"),
        },
    ] {
        run(&env, "acme", id, command).await;
    }
    let mut worker = env.worker(Arc::new(Contracts)).await;
    assert_eq!(drain(&mut worker).await, 14);
    let pool = &env.db.pool;

    let row: (
        String,
        i32,
        i64,
        NaiveDate,
        NaiveDate,
        NaiveDate,
        i32,
        String,
    ) = sqlx::query_as(
        "SELECT status, contract_version, amount_minor, start_date, end_date, \
         original_end_date, renewal_count, body FROM read.contracts WHERE contract_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "terminated".into(),
            3,
            1_200_000,
            date("2026-02-01"),
            date("2028-01-31"),
            date("2027-01-31"),
            1,
            "1. Scope. 9. Liability capped.".into()
        )
    );
    let people: (
        Uuid,
        Vec<Uuid>,
        Vec<String>,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<Uuid>,
        String,
        i64,
    ) = sqlx::query_as(
        "SELECT owner_id, shared_with_users, shared_with_roles, signatory_name, signed_at, \
         approval_id, counterparty, jsonb_array_length(parties)::int8 \
         FROM read.contracts WHERE contract_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        people,
        (
            owner,
            vec![],
            vec!["legal".to_owned()],
            Some("Jonas Weber".into()),
            Some(time("2025-11-08T10:00:00Z")),
            Some(second),
            "Northwind Logistics GmbH".into(),
            2
        )
    );
    let ends: (Option<DateTime<Utc>>, Option<String>, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT terminated_at, termination_reason, expired_at FROM read.contracts \
         WHERE contract_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        ends,
        (
            Some(time("2027-03-01T10:00:00Z")),
            Some("Warehouse closed".into()),
            None
        )
    );

    // Every version as it stood: the draft, new terms, then a new body.
    let versions: Vec<(i32, i64, NaiveDate, String, Uuid)> = sqlx::query_as(
        "SELECT version_no, amount_minor, end_date, body, changed_by FROM read.contract_versions \
         WHERE contract_id = $1 ORDER BY version_no",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        versions,
        [
            (1, 1_000_000, date("2026-12-31"), "1. Scope.".into(), owner),
            (2, 1_200_000, date("2027-01-31"), "1. Scope.".into(), owner),
            (
                3,
                1_200_000,
                date("2027-01-31"),
                "1. Scope. 9. Liability capped.".into(),
                reader
            ),
        ]
    );

    // A rebuild ends equal.
    let live = status::checksums(pool, &Contracts).await.unwrap();
    status::request_rebuild(pool, "contracts").await.unwrap();
    worker.refresh().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "rebuild did not finish"
        );
        let step = worker.process_rebuild_batch().await.unwrap();
        if let chronicle_projections::runtime::Step::Swapped { .. } = step {
            break;
        }
    }
    assert_eq!(status::checksums(pool, &Contracts).await.unwrap(), live);
}

#[tokio::test]
async fn a_contract_drafted_under_schema_v1_is_upcast() {
    let env = Env::new().await;
    let spec = event_specs()
        .into_iter()
        .find(|s| s.event_type == "contract.drafted" && s.version == 1)
        .unwrap();
    let id = Uuid::now_v7();
    let stream = StreamRef {
        tenant: TenantId::parse("acme").unwrap(),
        stream_type: TypeName::parse("contract").unwrap(),
        id: StreamId::parse(id.to_string()).unwrap(),
    };
    let event = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: TypeName::parse("contract.drafted").unwrap(),
        schema_version: 1,
        data: spec.example,
        metadata: Metadata::default(),
        personal: None,
    };
    env.store
        .append(&stream, ExpectedVersion::NoStream, &[event])
        .await
        .unwrap();
    let mut worker = env.worker(Arc::new(Contracts)).await;
    assert_eq!(drain(&mut worker).await, 1);
    let row: (i64, String, String, i32) = sqlx::query_as(
        "SELECT amount_minor, currency, status, contract_version FROM read.contracts \
         WHERE contract_id = $1",
    )
    .bind(id)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(row, (1_250_050, "EUR".into(), "draft".into(), 1));
}
