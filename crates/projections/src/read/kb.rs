//! `read.kb_articles` and `read.kb_article_revisions`.

use async_trait::async_trait;
use chronicle_domain::knowledge::{KnowledgeEvent, Tags};
use chronicle_domain::value::ShortText;
use chronicle_store::RecordedEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{decode_event, entity_id, stream_ids};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

/// The knowledge-base projection.
pub struct Kb;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArticleRow {
    pub article_id: Uuid,
    pub tenant_id: String,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub product: String,
    pub status: String,
    pub revision: i32,
    pub author_id: Uuid,
    pub published_at: DateTime<Utc>,
    pub revised_at: Option<DateTime<Utc>>,
    pub revised_by: Option<Uuid>,
    pub retired_at: Option<DateTime<Utc>>,
    pub retired_by: Option<Uuid>,
    pub retire_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub position: i64,
}

impl Row for ArticleRow {
    const TABLE: &'static str = "kb_articles";
    const KEY: &'static [&'static str] = &["article_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.article_id
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevisionRow {
    pub article_id: Uuid,
    pub revision: i32,
    pub tenant_id: String,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub author_id: Uuid,
    pub at: DateTime<Utc>,
    pub position: i64,
}

impl Row for RevisionRow {
    const TABLE: &'static str = "kb_article_revisions";
    const KEY: &'static [&'static str] = &["article_id", "revision"];
    type Key = (Uuid, i32);
    fn key(&self) -> (Uuid, i32) {
        (self.article_id, self.revision)
    }
}

#[derive(Default)]
struct Batch {
    articles: Rows<ArticleRow>,
    revisions: Rows<RevisionRow>,
}

#[async_trait]
impl Projection for Kb {
    fn name(&self) -> &'static str {
        "kb"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["kb_articles", "kb_article_revisions"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let ids = stream_ids(events, "knowledge_article");
        if ids.is_empty() {
            return Ok(());
        }
        let mut b = Batch::default();
        b.articles
            .load(&mut *conn, "t.article_id = ANY($1)", &ids)
            .await?;
        for event in events
            .iter()
            .filter(|e| e.stream_type == "knowledge_article")
        {
            apply_one(&mut b, event)?;
        }
        b.articles.flush(&mut *conn).await?;
        b.revisions.flush(&mut *conn).await?;
        Ok(())
    }
}

fn tags(tags: &Tags) -> Vec<String> {
    tags.as_slice()
        .iter()
        .map(ShortText::as_str)
        .map(str::to_owned)
        .collect()
}

fn revision(version: u32, event: &RecordedEvent) -> Result<i32, ApplyError> {
    i32::try_from(version).map_err(|_| ApplyError::poison(event, "revision number out of range"))
}

fn apply_one(b: &mut Batch, event: &RecordedEvent) -> Result<(), ApplyError> {
    let id = entity_id(event)?;
    let decoded: KnowledgeEvent = decode_event(event)?;
    if let KnowledgeEvent::Published(e) = &decoded {
        let revision = revision(e.version, event)?;
        let article = ArticleRow {
            article_id: id,
            tenant_id: event.tenant.clone(),
            title: e.title.as_str().to_owned(),
            body: e.body.as_str().to_owned(),
            tags: tags(&e.tags),
            product: e.product.as_str().to_owned(),
            status: "published".into(),
            revision,
            author_id: e.author_id,
            published_at: e.at,
            revised_at: None,
            revised_by: None,
            retired_at: None,
            retired_by: None,
            retire_reason: None,
            updated_at: event.recorded_at,
            version: event.stream_version as i64,
            position: event.position as i64,
        };
        b.revisions.put(RevisionRow {
            article_id: id,
            revision,
            tenant_id: article.tenant_id.clone(),
            title: article.title.clone(),
            body: article.body.clone(),
            tags: article.tags.clone(),
            author_id: e.author_id,
            at: e.at,
            position: article.position,
        });
        b.articles.put(article);
        return Ok(());
    }
    let Some(a) = b.articles.get_mut(&id) else {
        return Err(ApplyError::poison(
            event,
            "no knowledge_article.published before it",
        ));
    };
    a.updated_at = event.recorded_at;
    a.version = event.stream_version as i64;
    a.position = event.position as i64;
    match decoded {
        KnowledgeEvent::Published(_) => {}
        KnowledgeEvent::Revised(e) => {
            a.revision = revision(e.version, event)?;
            a.title = e.title.as_str().to_owned();
            a.body = e.body.as_str().to_owned();
            a.tags = tags(&e.tags);
            a.revised_at = Some(e.at);
            a.revised_by = Some(e.by);
            let row = RevisionRow {
                article_id: id,
                revision: a.revision,
                tenant_id: a.tenant_id.clone(),
                title: a.title.clone(),
                body: a.body.clone(),
                tags: a.tags.clone(),
                author_id: e.by,
                at: e.at,
                position: a.position,
            };
            b.revisions.put(row);
        }
        KnowledgeEvent::Retired(e) => {
            a.status = "retired".into();
            a.retired_at = Some(e.at);
            a.retired_by = Some(e.by);
            a.retire_reason = e.reason.map(|r| r.as_str().to_owned());
        }
    }
    Ok(())
}
