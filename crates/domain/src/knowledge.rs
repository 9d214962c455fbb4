//! Knowledge-base articles (seed 004): stream type `knowledge_article`,
//! stream id = the article id.
//!
//! ```text
//!   (no stream) ──publish──► published (version 1) ──retire──► retired (final)
//!                               │ ▲
//!                               └─┘ revise (version + 1)
//! ```
//!
//! Rules:
//! - an article is published once (`knowledge_article.already_exists`);
//! - each revision replaces title, body and tags and carries the new
//!   version number (1 at publication, then 2, 3, ...); a revision that
//!   changes nothing produces no event;
//! - a retired article can be neither revised nor retired again
//!   (`knowledge_article.retired`);
//! - the product an article is about is fixed at publication;
//! - authors and revisers are user ids; articles hold no personal data.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::catalog::EventSpec;
use crate::error::ErrorCode;
use crate::event::DomainEvent;
use crate::value::{LongText, ShortText};

/// An article's tags: distinct (case-insensitively), in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(from = "Vec<ShortText>", into = "Vec<ShortText>")]
#[schemars(with = "Vec<ShortText>")]
pub struct Tags(Vec<ShortText>);

impl Tags {
    pub fn new(tags: impl IntoIterator<Item = ShortText>) -> Self {
        let mut out: Vec<ShortText> = Vec::new();
        for tag in tags {
            let lower = tag.as_str().to_lowercase();
            if !out.iter().any(|t| t.as_str().to_lowercase() == lower) {
                out.push(tag);
            }
        }
        Self(out)
    }

    pub fn as_slice(&self) -> &[ShortText] {
        &self.0
    }
}

impl From<Vec<ShortText>> for Tags {
    fn from(v: Vec<ShortText>) -> Self {
        Self::new(v)
    }
}

impl From<Tags> for Vec<ShortText> {
    fn from(t: Tags) -> Self {
        t.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum KnowledgeCommand {
    Publish {
        actor: Uuid,
        title: ShortText,
        body: LongText,
        tags: Tags,
        product: ShortText,
        at: DateTime<Utc>,
    },
    Revise {
        actor: Uuid,
        title: ShortText,
        body: LongText,
        tags: Tags,
        at: DateTime<Utc>,
    },
    Retire {
        actor: Uuid,
        reason: Option<ShortText>,
        at: DateTime<Utc>,
    },
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ArticlePublished {
    pub title: ShortText,
    pub body: LongText,
    pub tags: Tags,
    pub product: ShortText,
    pub author_id: Uuid,
    /// Always 1.
    pub version: u32,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ArticleRevised {
    pub title: ShortText,
    pub body: LongText,
    pub tags: Tags,
    /// The new version number.
    pub version: u32,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ArticleRetired {
    pub reason: Option<ShortText>,
    /// The last version, the one retired.
    pub version: u32,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(tag = "type", content = "data")]
pub enum KnowledgeEvent {
    #[serde(rename = "knowledge_article.published")]
    Published(ArticlePublished),
    #[serde(rename = "knowledge_article.revised")]
    Revised(ArticleRevised),
    #[serde(rename = "knowledge_article.retired")]
    Retired(ArticleRetired),
}

impl DomainEvent for KnowledgeEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Published(_) => "knowledge_article.published",
            Self::Revised(_) => "knowledge_article.revised",
            Self::Retired(_) => "knowledge_article.retired",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnowledgeError {
    #[error("article not found")]
    NotFound,
    #[error("article already exists")]
    AlreadyExists,
    #[error("article is retired")]
    Retired,
    #[error("article has too many revisions")]
    TooManyRevisions,
}

impl ErrorCode for KnowledgeError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "knowledge_article.not_found",
            Self::AlreadyExists => "knowledge_article.already_exists",
            Self::Retired => "knowledge_article.retired",
            Self::TooManyRevisions => "knowledge_article.too_many_revisions",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArticleStatus {
    Published,
    Retired,
}

/// The current text of an article.
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleContent {
    pub title: ShortText,
    pub body: LongText,
    pub tags: Tags,
}

/// One article. `Default` = not published.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnowledgeArticle {
    pub status: Option<ArticleStatus>,
    /// 0 until published, then the current version.
    pub version: u32,
    pub content: Option<ArticleContent>,
}

impl KnowledgeArticle {
    fn published(&self) -> Result<(), KnowledgeError> {
        match self.status {
            None => Err(KnowledgeError::NotFound),
            Some(ArticleStatus::Retired) => Err(KnowledgeError::Retired),
            Some(ArticleStatus::Published) => Ok(()),
        }
    }
}

impl Aggregate for KnowledgeArticle {
    const STREAM_TYPE: &'static str = "knowledge_article";

    type Command = KnowledgeCommand;
    type Event = KnowledgeEvent;
    type Error = KnowledgeError;

    fn decide(&self, command: &KnowledgeCommand) -> Result<Vec<KnowledgeEvent>, KnowledgeError> {
        match command {
            KnowledgeCommand::Publish {
                actor,
                title,
                body,
                tags,
                product,
                at,
            } => {
                if self.status.is_some() {
                    return Err(KnowledgeError::AlreadyExists);
                }
                Ok(vec![KnowledgeEvent::Published(ArticlePublished {
                    title: title.clone(),
                    body: body.clone(),
                    tags: tags.clone(),
                    product: product.clone(),
                    author_id: *actor,
                    version: 1,
                    at: *at,
                })])
            }
            KnowledgeCommand::Revise {
                actor,
                title,
                body,
                tags,
                at,
            } => {
                self.published()?;
                let unchanged = self
                    .content
                    .as_ref()
                    .is_some_and(|c| &c.title == title && &c.body == body && &c.tags == tags);
                if unchanged {
                    return Ok(vec![]);
                }
                let version = self
                    .version
                    .checked_add(1)
                    .ok_or(KnowledgeError::TooManyRevisions)?;
                Ok(vec![KnowledgeEvent::Revised(ArticleRevised {
                    title: title.clone(),
                    body: body.clone(),
                    tags: tags.clone(),
                    version,
                    by: *actor,
                    at: *at,
                })])
            }
            KnowledgeCommand::Retire { actor, reason, at } => {
                self.published()?;
                Ok(vec![KnowledgeEvent::Retired(ArticleRetired {
                    reason: reason.clone(),
                    version: self.version,
                    by: *actor,
                    at: *at,
                })])
            }
        }
    }

    fn evolve(mut self, event: &KnowledgeEvent) -> Self {
        match event {
            KnowledgeEvent::Published(e) => {
                self.status = Some(ArticleStatus::Published);
                self.version = e.version;
                self.content = Some(ArticleContent {
                    title: e.title.clone(),
                    body: e.body.clone(),
                    tags: e.tags.clone(),
                });
            }
            KnowledgeEvent::Revised(e) => {
                self.version = e.version;
                self.content = Some(ArticleContent {
                    title: e.title.clone(),
                    body: e.body.clone(),
                    tags: e.tags.clone(),
                });
            }
            KnowledgeEvent::Retired(_) => self.status = Some(ArticleStatus::Retired),
        }
        self
    }
}

/// The catalogue entries of the knowledge-article events.
pub fn event_specs() -> Vec<EventSpec> {
    let expert = "0190a5b2-7c3d-7e4f-8a1b-00000000e001";
    let spec = |event_type: &'static str, schema, example| EventSpec {
        stream_type: KnowledgeArticle::STREAM_TYPE,
        event_type,
        version: 1,
        schema,
        example,
    };
    vec![
        spec(
            "knowledge_article.published",
            schemars::schema_for!(ArticlePublished),
            json!({
                "title": "SmartHub 3 loses Wi-Fi after firmware 2.4",
                "body": "Symptoms: the hub drops its Wi-Fi connection in the evening.\n\n\
                         Fix: roll back to firmware 2.3.9 (Settings > System > Firmware) \
                         and disable band steering.",
                "tags": ["wi-fi", "firmware", "smarthub"],
                "product": "Penultimate SmartHub 3",
                "author_id": expert,
                "version": 1,
                "at": "2024-06-04T11:00:00Z",
            }),
        ),
        spec(
            "knowledge_article.revised",
            schemars::schema_for!(ArticleRevised),
            json!({
                "title": "SmartHub 3 loses Wi-Fi after firmware 2.4 (fixed in 2.4.1)",
                "body": "Firmware 2.4.1 fixes the evening drop-outs. Update the hub; \
                         if that is not possible, roll back to 2.3.9.",
                "tags": ["wi-fi", "firmware", "smarthub"],
                "version": 2,
                "by": expert,
                "at": "2024-07-01T09:30:00Z",
            }),
        ),
        spec(
            "knowledge_article.retired",
            schemars::schema_for!(ArticleRetired),
            json!({
                "reason": "SmartHub 3 reached end of support",
                "version": 2,
                "by": expert,
                "at": "2026-01-15T10:00:00Z",
            }),
        ),
    ]
}

#[cfg(test)]
mod tests;
