//! The knowledge-base projection: articles and their revisions follow
//! publication, revisions and retirement, and a rebuild ends equal to the
//! live tables.

use std::sync::Arc;
use std::time::Duration;

use chronicle_commands::Context;
use chronicle_domain::knowledge::{KnowledgeArticle, KnowledgeCommand, Tags};
use chronicle_domain::value::{LongText, ShortText};
use chronicle_projections::read::kb::Kb;
use chronicle_projections::runtime::Step;
use chronicle_projections::status;
use chronicle_store::{StreamId, TenantId};
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::support::{drain, Env};

fn at(m: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap() + chrono::Duration::minutes(m)
}

fn short(s: &str) -> ShortText {
    ShortText::parse("text", s.to_owned()).unwrap()
}

fn tags(tags: &[&str]) -> Tags {
    Tags::new(tags.iter().map(|t| short(t)))
}

async fn run(env: &Env, id: Uuid, command: KnowledgeCommand) {
    env.commands
        .execute::<KnowledgeArticle>(
            &StreamId::parse(id.to_string()).unwrap(),
            &Context::new(TenantId::parse("acme").unwrap(), "tester"),
            &command,
        )
        .await
        .unwrap();
}

async fn publish(env: &Env, author: Uuid, title: &str, minute: i64) -> Uuid {
    let id = Uuid::now_v7();
    run(
        env,
        id,
        KnowledgeCommand::Publish {
            actor: author,
            title: short(title),
            body: LongText::parse("body", "Unplug it for ten seconds.".to_owned()).unwrap(),
            tags: tags(&["wi-fi", "router"]),
            product: short("fibre-1000"),
            at: at(minute),
        },
    )
    .await;
    id
}

#[tokio::test]
async fn articles_follow_publication_revisions_and_retirement() {
    let env = Env::new().await;
    let (author, reviser) = (Uuid::now_v7(), Uuid::now_v7());
    let id = publish(&env, author, "Restart the router", 0).await;
    let other = publish(&env, author, "Check the cable", 1).await;
    run(
        &env,
        id,
        KnowledgeCommand::Revise {
            actor: reviser,
            title: short("Restart the router safely"),
            body: LongText::parse("body", "Hold the button for ten seconds.".to_owned()).unwrap(),
            tags: tags(&["Wi-Fi", "firmware"]),
            at: at(5),
        },
    )
    .await;
    run(
        &env,
        other,
        KnowledgeCommand::Retire {
            actor: reviser,
            reason: Some(short("superseded")),
            at: at(6),
        },
    )
    .await;
    let mut worker = env.worker(Arc::new(Kb)).await;
    assert_eq!(drain(&mut worker).await, 4);

    type Article = (
        String,
        Vec<String>,
        String,
        i32,
        i64,
        Option<Uuid>,
        Option<DateTime<Utc>>,
    );
    let row: Article = sqlx::query_as(
        "SELECT title, tags, status, revision, version, revised_by, revised_at \
         FROM read.kb_articles WHERE article_id = $1",
    )
    .bind(id)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "Restart the router safely".into(),
            vec!["Wi-Fi".into(), "firmware".into()],
            "published".into(),
            2,
            2,
            Some(reviser),
            Some(at(5))
        )
    );
    let revisions: Vec<(i32, String, Uuid)> = sqlx::query_as(
        "SELECT revision, title, author_id FROM read.kb_article_revisions \
         WHERE article_id = $1 ORDER BY revision",
    )
    .bind(id)
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        revisions,
        [
            (1, "Restart the router".into(), author),
            (2, "Restart the router safely".into(), reviser)
        ]
    );
    let retired: (String, i32, i64, Option<DateTime<Utc>>, Option<String>) = sqlx::query_as(
        "SELECT status, revision, version, retired_at, retire_reason \
         FROM read.kb_articles WHERE article_id = $1",
    )
    .bind(other)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    // Retiring moves the stream version, not the revision.
    assert_eq!(
        retired,
        (
            "retired".into(),
            1,
            2,
            Some(at(6)),
            Some("superseded".into())
        )
    );
    let tagged: Vec<Uuid> = sqlx::query_scalar(
        "SELECT article_id FROM read.kb_articles WHERE tags && ARRAY['router'] ORDER BY published_at",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(tagged, [other]);

    // A rebuild ends equal to what the live batches made.
    let live = status::checksums(&env.db.pool, &Kb).await.unwrap();
    status::request_rebuild(&env.db.pool, "kb").await.unwrap();
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
    assert_eq!(status::checksums(&env.db.pool, &Kb).await.unwrap(), live);
}
