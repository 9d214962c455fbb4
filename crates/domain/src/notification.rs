//! Notification preferences (seeds 000, 002, 004): which kinds of
//! notification a user wants, and on which channels. Stream type
//! `notification_preferences`, one stream per user of a tenant (its id is
//! derived from tenant and user by the API).
//!
//! ```text
//!   (no stream) ──set──► set ──set (a different value)──► set
//! ```
//!
//! Rules:
//! - a user who never set preferences gets every kind in-app only (see
//!   [`NotificationPreferences::default`]);
//! - setting the preferences replaces them whole; setting the same value
//!   again produces no event;
//! - the email address is personal data (see [`DomainEvent::personal_fields`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::catalog::EventSpec;
use crate::error::ErrorCode;
use crate::event::DomainEvent;
use crate::value::{Email, ValueError};

/// What a notification is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A ticket or an implementation task was assigned to the user.
    Assignment,
    /// An approval waits for the user's decision (or their role's).
    ApprovalWaiting,
    /// An approval the user requested was granted or rejected.
    ApprovalOutcome,
    /// A ticket the user works on (or, for managers, any ticket) missed an SLA.
    SlaBreach,
    /// A ticket, lead or contract of the user's changed status.
    StatusChange,
    /// A survey about a resolved ticket waits for the customer.
    Survey,
    /// A contract the user owns is due for renewal.
    RenewalDue,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 7] = [
        Self::Assignment,
        Self::ApprovalWaiting,
        Self::ApprovalOutcome,
        Self::SlaBreach,
        Self::StatusChange,
        Self::Survey,
        Self::RenewalDue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assignment => "assignment",
            Self::ApprovalWaiting => "approval_waiting",
            Self::ApprovalOutcome => "approval_outcome",
            Self::SlaBreach => "sla_breach",
            Self::StatusChange => "status_change",
            Self::Survey => "survey",
            Self::RenewalDue => "renewal_due",
        }
    }

    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValueError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == value)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                ValueError::new(field, format!("must be one of {}", names.join(", ")))
            })
    }
}

/// Where a webhook notification is POSTed: an absolute `http` or `https`
/// URL with a host, at most 2,000 characters, no whitespace, no user info.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValueError> {
        let value = value.trim();
        if value.chars().count() > 2000 {
            return Err(ValueError::new(field, "must be at most 2000 characters"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValueError::new(field, "must not contain whitespace"));
        }
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"))
            .ok_or_else(|| ValueError::new(field, "must be an http:// or https:// URL"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() {
            return Err(ValueError::new(field, "must name a host"));
        }
        if authority.contains('@') {
            return Err(ValueError::new(field, "must not carry user information"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse("webhook_url", &s).map_err(serde::de::Error::custom)
    }
}

/// A user's choice of kinds and channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NotificationPreferences {
    /// The kinds the user wants; the others are not sent on any channel.
    pub kinds: BTreeSet<NotificationKind>,
    /// Listed in `GET /api/v1/me/notifications`.
    pub in_app: bool,
    /// Mailed to this address, when set.
    pub email: Option<Email>,
    /// POSTed (signed) to this URL, when set.
    pub webhook_url: Option<WebhookUrl>,
}

impl Default for NotificationPreferences {
    /// Every kind, in-app only.
    fn default() -> Self {
        Self {
            kinds: NotificationKind::ALL.into_iter().collect(),
            in_app: true,
            email: None,
            webhook_url: None,
        }
    }
}

impl NotificationPreferences {
    /// Whether `kind` goes out at all.
    pub fn wants(&self, kind: NotificationKind) -> bool {
        self.kinds.contains(&kind)
    }
}

/// The id of the stream holding `user_id`'s preferences in `tenant`: the
/// UUIDv5 (URL namespace) of `chronicle-notification-preferences:<tenant>:<user>`.
pub fn stream_id(tenant: &str, user_id: Uuid) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("chronicle-notification-preferences:{tenant}:{user_id}").as_bytes(),
    )
}

#[derive(Debug, Clone, PartialEq)]
pub enum NotificationCommand {
    /// Replaces the user's preferences.
    SetPreferences {
        user_id: Uuid,
        preferences: NotificationPreferences,
        at: DateTime<Utc>,
    },
}

/// `notification_preferences.set`: the user's preferences from now on.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct PreferencesSet {
    pub user_id: Uuid,
    pub preferences: NotificationPreferences,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(tag = "type", content = "data")]
pub enum NotificationEvent {
    #[serde(rename = "notification_preferences.set")]
    PreferencesSet(PreferencesSet),
}

impl DomainEvent for NotificationEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::PreferencesSet(_) => "notification_preferences.set",
        }
    }

    fn personal_fields(&self) -> &'static [&'static str] {
        match self {
            Self::PreferencesSet(_) => &["/preferences/email"],
        }
    }

    fn personal_subject(&self) -> Option<Uuid> {
        match self {
            Self::PreferencesSet(e) => Some(e.user_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// The stream already holds another user's preferences.
    #[error("these preferences belong to another user")]
    OtherUser,
}

impl ErrorCode for NotificationError {
    fn code(&self) -> &'static str {
        match self {
            Self::OtherUser => "notification_preferences.other_user",
        }
    }
}

/// One user's preferences. `Default` = never set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotificationSettings {
    pub user_id: Option<Uuid>,
    pub preferences: Option<NotificationPreferences>,
}

impl NotificationSettings {
    /// The preferences in force: the ones set, or the default.
    pub fn effective(&self) -> NotificationPreferences {
        self.preferences.clone().unwrap_or_default()
    }
}

impl Aggregate for NotificationSettings {
    const STREAM_TYPE: &'static str = "notification_preferences";

    type Command = NotificationCommand;
    type Event = NotificationEvent;
    type Error = NotificationError;

    fn decide(&self, command: &NotificationCommand) -> Result<Vec<NotificationEvent>, Self::Error> {
        match command {
            NotificationCommand::SetPreferences {
                user_id,
                preferences,
                at,
            } => {
                if self.user_id.is_some_and(|owner| owner != *user_id) {
                    return Err(NotificationError::OtherUser);
                }
                if self.preferences.as_ref() == Some(preferences) {
                    return Ok(vec![]);
                }
                Ok(vec![NotificationEvent::PreferencesSet(PreferencesSet {
                    user_id: *user_id,
                    preferences: preferences.clone(),
                    at: *at,
                })])
            }
        }
    }

    fn evolve(mut self, event: &NotificationEvent) -> Self {
        match event {
            NotificationEvent::PreferencesSet(e) => {
                self.user_id = Some(e.user_id);
                self.preferences = Some(e.preferences.clone());
            }
        }
        self
    }
}

/// The catalogue entries of the notification-preference events.
pub fn event_specs() -> Vec<EventSpec> {
    vec![EventSpec {
        stream_type: NotificationSettings::STREAM_TYPE,
        event_type: "notification_preferences.set",
        version: 1,
        schema: schemars::schema_for!(PreferencesSet),
        example: json!({
            "user_id": "0190a5b2-7c3d-7e4f-8a1b-00000000e001",
            "preferences": {
                "kinds": ["assignment", "sla_breach", "status_change"],
                "in_app": true,
                "email": "priya.raman@example.com",
                "webhook_url": "https://hooks.example.com/chronicle"
            },
            "at": "2026-11-30T09:15:00Z"
        }),
    }]
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::event::{decode, encode};
    use crate::testing::given;

    const ANN: Uuid = Uuid::from_u128(0xa11);
    const BOB: Uuid = Uuid::from_u128(0xb0b);

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
    }

    fn prefs(kinds: &[NotificationKind], email: Option<&str>) -> NotificationPreferences {
        NotificationPreferences {
            kinds: kinds.iter().copied().collect(),
            in_app: true,
            email: email.map(|e| Email::parse("email", e).unwrap()),
            webhook_url: Some(WebhookUrl::parse("webhook_url", "https://hooks.example/x").unwrap()),
        }
    }

    fn set(user_id: Uuid, preferences: NotificationPreferences) -> NotificationCommand {
        NotificationCommand::SetPreferences {
            user_id,
            preferences,
            at: at(),
        }
    }

    fn was_set(user_id: Uuid, preferences: NotificationPreferences) -> NotificationEvent {
        NotificationEvent::PreferencesSet(PreferencesSet {
            user_id,
            preferences,
            at: at(),
        })
    }

    #[test]
    fn first_preferences_are_recorded() {
        let p = prefs(&[NotificationKind::Assignment], Some("ann@example.com"));
        let state = given::<NotificationSettings>([])
            .when(&set(ANN, p.clone()))
            .then([was_set(ANN, p.clone())]);
        assert_eq!(state.effective(), p);
    }

    #[test]
    fn new_preferences_replace_the_old_ones() {
        let old = prefs(&[NotificationKind::Assignment], None);
        let new = prefs(&[NotificationKind::Survey], Some("ann@example.com"));
        given::<NotificationSettings>([was_set(ANN, old)])
            .when(&set(ANN, new.clone()))
            .then([was_set(ANN, new)]);
    }

    #[test]
    fn the_same_preferences_again_change_nothing() {
        let p = prefs(&[NotificationKind::Assignment], None);
        given::<NotificationSettings>([was_set(ANN, p.clone())])
            .when(&set(ANN, p))
            .then([]);
    }

    #[test]
    fn another_users_stream_is_refused() {
        let p = prefs(&[NotificationKind::Assignment], None);
        given::<NotificationSettings>([was_set(ANN, p.clone())])
            .when(&set(BOB, p))
            .then_err("notification_preferences.other_user");
    }

    #[test]
    fn never_set_means_every_kind_in_app_only() {
        let d = NotificationSettings::default().effective();
        assert!(NotificationKind::ALL.iter().all(|k| d.wants(*k)));
        assert!(d.in_app && d.email.is_none() && d.webhook_url.is_none());
    }

    #[test]
    fn kinds_parse_by_name_and_refuse_others() {
        for kind in NotificationKind::ALL {
            assert_eq!(NotificationKind::parse("kinds", kind.as_str()), Ok(kind));
        }
        let err = NotificationKind::parse("kinds", "gossip").unwrap_err();
        assert_eq!(err.field, "kinds");
        assert!(err.reason.contains("assignment"), "{}", err.reason);
    }

    #[test]
    fn webhook_urls_parse() {
        assert!(WebhookUrl::parse("u", "https://hooks.example.com/a?b=c").is_ok());
        assert!(WebhookUrl::parse("u", "http://127.0.0.1:9000/").is_ok());
        for bad in [
            "",
            "ftp://x",
            "https://",
            "https:///path",
            "https://user:pw@host/",
            "https://host/a b",
        ] {
            assert!(WebhookUrl::parse("u", bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("https://h/{}", "a".repeat(2000));
        assert!(WebhookUrl::parse("u", &long).is_err());
    }

    #[test]
    fn the_email_is_marked_personal_and_the_event_round_trips() {
        let e = was_set(
            ANN,
            prefs(&[NotificationKind::Survey], Some("ann@example.com")),
        );
        assert_eq!(e.personal_fields(), &["/preferences/email"]);
        let encoded = encode(&e);
        assert_eq!(encoded.data["preferences"]["email"], "ann@example.com");
        let back: NotificationEvent =
            decode(encoded.event_type, encoded.schema_version, encoded.data).unwrap();
        assert_eq!(back, e);
    }
}
