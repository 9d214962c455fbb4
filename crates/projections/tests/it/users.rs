//! The users projection: users, experts, and each expert's load counted
//! from ticket events, the same whatever the batch size and whether the
//! tickets or the expert came first.

use std::sync::Arc;
use std::time::Duration;

use chronicle_commands::Context;
use chronicle_domain::ticket::{AssignedBy, Ticket, TicketCommand};
use chronicle_domain::user::{Roles, Skills, User, UserCommand};
use chronicle_domain::value::{Email, LongText, ShortText};
use chronicle_projections::read::users::Users;
use chronicle_projections::runtime::{Options, Step, Worker};
use chronicle_projections::status;
use chronicle_store::{StreamId, TenantId};
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::support::{drain, Env};

fn at(m: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap() + chrono::Duration::minutes(m)
}

fn ctx() -> Context {
    Context::new(TenantId::parse("acme").unwrap(), "tester")
}

fn long(s: &str) -> LongText {
    LongText::parse("text", s.to_owned()).unwrap()
}

fn roles(names: &[&str]) -> Roles {
    Roles::parse("roles", names.iter().copied()).unwrap()
}

async fn user(env: &Env, id: Uuid, command: UserCommand) {
    env.commands
        .execute::<User>(&StreamId::parse(id.to_string()).unwrap(), &ctx(), &command)
        .await
        .unwrap();
}

async fn ticket(env: &Env, id: Uuid, command: TicketCommand) {
    env.commands
        .execute::<Ticket>(&StreamId::parse(id.to_string()).unwrap(), &ctx(), &command)
        .await
        .unwrap();
}

async fn register(env: &Env, id: Uuid, email: &str, role_names: &[&str], minute: i64) {
    user(
        env,
        id,
        UserCommand::Register {
            actor: Uuid::now_v7(),
            name: ShortText::parse("name", "Priya Raman".to_owned()).unwrap(),
            email: Email::parse("email", email).unwrap(),
            roles: roles(role_names),
            at: at(minute),
        },
    )
    .await;
}

async fn open(env: &Env) -> Uuid {
    crate::support::open_ticket(&env.commands, "acme", "slow line").await
}

async fn assign(env: &Env, t: Uuid, expert: Uuid, minute: i64) {
    let command = TicketCommand::AssignExpert {
        expert_id: expert,
        by: AssignedBy::Matching,
        at: at(minute),
    };
    ticket(env, t, command).await;
}

/// Accept, start and resolve.
async fn resolve(env: &Env, t: Uuid, expert: Uuid, minute: i64) {
    for command in [
        TicketCommand::Accept {
            actor: expert,
            at: at(minute),
        },
        TicketCommand::StartWork {
            actor: expert,
            at: at(minute),
        },
        TicketCommand::Resolve {
            actor: expert,
            resolution: long("fixed"),
            at: at(minute),
        },
    ] {
        ticket(env, t, command).await;
    }
}

/// `(availability, open_tickets, skills)` of an expert, if they have a row.
async fn expert(env: &Env, id: Uuid) -> Option<(String, i32, Vec<String>)> {
    sqlx::query_as(
        "SELECT availability, open_tickets, skills FROM read.experts WHERE expert_id = $1",
    )
    .bind(id)
    .fetch_optional(&env.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn users_experts_and_the_load_follow_user_and_ticket_events() {
    let env = Env::new().await;
    let (e1, e2) = (Uuid::now_v7(), Uuid::now_v7());
    register(&env, e1, "Priya.Raman@example.com", &["expert"], 0).await;
    user(
        &env,
        e1,
        UserCommand::SetExpertSkills {
            actor: e1,
            skills: Skills::new(
                ["networking", "Smart TV"].map(|s| ShortText::parse("s", s.to_owned()).unwrap()),
            ),
            at: at(1),
        },
    )
    .await;
    user(
        &env,
        e1,
        UserCommand::ChangeAvailability {
            actor: e1,
            available: true,
            at: at(2),
        },
    )
    .await;
    // A ticket is assigned to e2 before e2 is registered: it counts once
    // they become an expert.
    let t0 = open(&env).await;
    assign(&env, t0, e2, 3).await;
    let mut worker = env.worker(Arc::new(Users)).await;
    drain(&mut worker).await;
    assert_eq!(
        expert(&env, e1).await,
        Some((
            "available".into(),
            0,
            vec!["networking".into(), "Smart TV".into()]
        ))
    );
    assert_eq!(expert(&env, e2).await, None);
    register(&env, e2, "kim@example.com", &["expert", "manager"], 4).await;
    drain(&mut worker).await;
    assert_eq!(
        expert(&env, e2).await,
        Some(("unavailable".into(), 1, vec![]))
    );

    let (t1, t2, t3) = (open(&env).await, open(&env).await, open(&env).await);
    for t in [t1, t2, t3] {
        assign(&env, t, e1, 5).await;
    }
    drain(&mut worker).await;
    assert_eq!(expert(&env, e1).await.unwrap().1, 3);
    // A rejection and a resolution take tickets off e1; the rejected one
    // goes to e2; a reopen puts one back on e1.
    ticket(
        &env,
        t2,
        TicketCommand::Reject {
            actor: e1,
            reason: long("not my area"),
            at: at(6),
        },
    )
    .await;
    assign(&env, t2, e2, 7).await;
    resolve(&env, t3, e1, 8).await;
    drain(&mut worker).await;
    assert_eq!(expert(&env, e1).await.unwrap().1, 1);
    assert_eq!(expert(&env, e2).await.unwrap().1, 2);
    ticket(
        &env,
        t3,
        TicketCommand::Reopen {
            actor: Uuid::now_v7(),
            reason: long("still slow"),
            at: at(9),
        },
    )
    .await;
    drain(&mut worker).await;
    assert_eq!(expert(&env, e1).await.unwrap().1, 2);
    let (updated, expert_position): (DateTime<Utc>, i64) =
        sqlx::query_as("SELECT updated_at, position FROM read.experts WHERE expert_id = $1")
            .bind(e1)
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
    let (reopened_at, reopened_position): (DateTime<Utc>, i64) = sqlx::query_as(
        "SELECT recorded_at, position FROM events WHERE stream_id = $1 \
         ORDER BY stream_version DESC LIMIT 1",
    )
    .bind(t3.to_string())
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!((updated, expert_position), (reopened_at, reopened_position));
    // Resolved and closed: off e1 for good.
    ticket(
        &env,
        t3,
        TicketCommand::Resolve {
            actor: e1,
            resolution: long("replaced the modem"),
            at: at(10),
        },
    )
    .await;
    ticket(
        &env,
        t3,
        TicketCommand::Close {
            actor: Uuid::now_v7(),
            at: at(11),
        },
    )
    .await;
    drain(&mut worker).await;
    assert_eq!(expert(&env, e1).await.unwrap().1, 1);

    // Without the expert role there is no expert row; with it again, the
    // skills and the load are back.
    user(
        &env,
        e1,
        UserCommand::ChangeRoles {
            actor: Uuid::now_v7(),
            roles: roles(&["manager"]),
            at: at(12),
        },
    )
    .await;
    drain(&mut worker).await;
    assert_eq!(expert(&env, e1).await, None);
    user(
        &env,
        e1,
        UserCommand::ChangeRoles {
            actor: Uuid::now_v7(),
            roles: roles(&["expert", "manager"]),
            at: at(13),
        },
    )
    .await;
    user(
        &env,
        e2,
        UserCommand::Deactivate {
            actor: Uuid::now_v7(),
            at: at(14),
        },
    )
    .await;
    drain(&mut worker).await;
    assert_eq!(
        expert(&env, e1).await,
        Some((
            "unavailable".into(),
            1,
            vec!["networking".into(), "Smart TV".into()]
        ))
    );
    assert_eq!(expert(&env, e2).await, None);

    type UserRow = (
        Option<String>,
        Vec<String>,
        String,
        Option<DateTime<Utc>>,
        i64,
    );
    let row: UserRow = sqlx::query_as(
        "SELECT email, roles, status, deactivated_at, version FROM read.users WHERE user_id = $1",
    )
    .bind(e2)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            Some("kim@example.com".into()),
            vec!["expert".into(), "manager".into()],
            "deactivated".into(),
            Some(at(14)),
            2
        )
    );
    let found: Vec<Uuid> = sqlx::query_scalar(
        "SELECT user_id FROM read.users WHERE lower(email) = 'priya.raman@example.com' \
         AND roles && ARRAY['manager']",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(found, [e1]);
}

#[tokio::test]
async fn one_event_per_batch_and_a_rebuild_in_one_batch_give_the_same_tables() {
    let env = Env::new().await;
    let experts: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    // The first expert registers after their tickets are assigned.
    for (i, e) in experts.iter().enumerate().skip(1) {
        register(&env, *e, &format!("e{i}@example.com"), &["expert"], 0).await;
    }
    for i in 0..9_i64 {
        let t = open(&env).await;
        let e = experts[i as usize % 3];
        assign(&env, t, e, i).await;
        match i % 3 {
            0 => resolve(&env, t, e, 20 + i).await,
            1 => {
                let reject = TicketCommand::Reject {
                    actor: e,
                    reason: long("busy"),
                    at: at(30 + i),
                };
                ticket(&env, t, reject).await;
                assign(&env, t, experts[(i as usize + 1) % 3], 40 + i).await;
            }
            _ => {}
        }
    }
    register(&env, experts[0], "e0@example.com", &["expert"], 50).await;
    let mut worker = Worker::acquire(
        &env.db.pool.connect_options(),
        env.store.clone(),
        Arc::new(Users),
        Options {
            batch_size: 1,
            ..Options::default()
        },
    )
    .await
    .unwrap()
    .expect("the lease is free");
    drain(&mut worker).await;
    let loads: Vec<i32> = sqlx::query_scalar(
        "SELECT open_tickets FROM read.experts WHERE expert_id = ANY($1) ORDER BY array_position($1, expert_id)",
    )
    .bind(&experts)
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    // Tickets 0, 3, 6 (expert 0) resolved; 1, 4, 7 rejected by expert 1 and
    // moved to expert 2; 2, 5, 8 stay with expert 2.
    assert_eq!(loads, [0, 0, 6]);
    let live = status::checksums(&env.db.pool, &Users).await.unwrap();
    status::request_rebuild(&env.db.pool, "users")
        .await
        .unwrap();
    worker.refresh().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "rebuild did not finish"
        );
        worker.process_batch().await.unwrap();
        if let Step::Swapped { .. } = worker.process_rebuild_batch().await.unwrap() {
            break;
        }
    }
    assert_eq!(status::checksums(&env.db.pool, &Users).await.unwrap(), live);
}
