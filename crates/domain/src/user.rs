//! Users of a tenant, and the expert profile of those holding the `expert`
//! role (stream type `user`, stream id = the user id).
//!
//! ```text
//!   (no stream) ──register──► active ──deactivate──► deactivated (final)
//!                               │ ▲
//!                               └─┘ change_roles, set_expert_skills,
//!                                   change_availability
//! ```
//!
//! Rules:
//! - a user has at least one role, from the fixed set [`Role`];
//! - only a user holding the `expert` role has skills set or availability
//!   changed (`user.not_expert`); a new expert starts unavailable and
//!   without skills;
//! - an available user is always an active expert: when the `expert` role
//!   is taken away, or the user is deactivated, `decide` first emits
//!   `user.availability_changed` (available: false), so the matching
//!   projection needs no special case;
//! - a deactivated user accepts no command (`user.deactivated`);
//! - a command that changes nothing (same roles, same skills, same
//!   availability) produces no event;
//! - the name and the email are personal data; email uniqueness within a
//!   tenant is not this aggregate's business (it sees one user only).

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::catalog::EventSpec;
use crate::error::ErrorCode;
use crate::event::DomainEvent;
use crate::value::{Email, ShortText, ValueError};

// ---------------------------------------------------------------------------
// Value objects
// ---------------------------------------------------------------------------

/// A role a user holds in a tenant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Expert,
    Approver,
    Sales,
    Manager,
    Auditor,
    Analyst,
    Admin,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Self::Customer,
        Self::Expert,
        Self::Approver,
        Self::Sales,
        Self::Manager,
        Self::Auditor,
        Self::Analyst,
        Self::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Expert => "expert",
            Self::Approver => "approver",
            Self::Sales => "sales",
            Self::Manager => "manager",
            Self::Auditor => "auditor",
            Self::Analyst => "analyst",
            Self::Admin => "admin",
        }
    }

    /// Parses a role name (exact, lowercase).
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValueError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == value)
            .ok_or_else(|| {
                ValueError::new(
                    field,
                    format!(
                        "unknown role {value:?}; expected one of customer, expert, approver, \
                         sales, manager, auditor, analyst, admin"
                    ),
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty set of roles. Serialised as a sorted JSON array of role names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "BTreeSet<Role>", into = "BTreeSet<Role>")]
#[schemars(with = "BTreeSet<Role>")]
pub struct Roles(BTreeSet<Role>);

impl Roles {
    pub fn new(
        field: &'static str,
        roles: impl IntoIterator<Item = Role>,
    ) -> Result<Self, ValueError> {
        let set: BTreeSet<Role> = roles.into_iter().collect();
        if set.is_empty() {
            return Err(ValueError::new(field, "at least one role is required"));
        }
        Ok(Self(set))
    }

    /// Parses role names; duplicates collapse.
    pub fn parse<'a>(
        field: &'static str,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, ValueError> {
        let roles = names
            .into_iter()
            .map(|n| Role::parse(field, n))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(field, roles)
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    pub fn as_set(&self) -> &BTreeSet<Role> {
        &self.0
    }
}

impl TryFrom<BTreeSet<Role>> for Roles {
    type Error = ValueError;

    fn try_from(set: BTreeSet<Role>) -> Result<Self, ValueError> {
        Self::new("roles", set)
    }
}

impl From<Roles> for BTreeSet<Role> {
    fn from(roles: Roles) -> Self {
        roles.0
    }
}

/// An expert's skills: distinct (case-insensitively) skill names, kept in
/// case-insensitive alphabetical order. May be empty (an expert without
/// skills is never matched).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(from = "Vec<ShortText>", into = "Vec<ShortText>")]
#[schemars(with = "Vec<ShortText>")]
pub struct Skills(Vec<ShortText>);

impl Skills {
    pub fn new(skills: impl IntoIterator<Item = ShortText>) -> Self {
        let mut out: Vec<ShortText> = Vec::new();
        for skill in skills {
            if !out
                .iter()
                .any(|s| s.as_str().to_lowercase() == skill.as_str().to_lowercase())
            {
                out.push(skill);
            }
        }
        out.sort_by_key(|s| s.as_str().to_lowercase());
        Self(out)
    }

    /// Whether the skill is in the set, ignoring case.
    pub fn has(&self, skill: &str) -> bool {
        let wanted = skill.trim().to_lowercase();
        self.0.iter().any(|s| s.as_str().to_lowercase() == wanted)
    }

    pub fn as_slice(&self) -> &[ShortText] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<ShortText>> for Skills {
    fn from(v: Vec<ShortText>) -> Self {
        Self::new(v)
    }
}

impl From<Skills> for Vec<ShortText> {
    fn from(s: Skills) -> Self {
        s.0
    }
}

// ---------------------------------------------------------------------------
// Commands, events, errors
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    Register {
        actor: Uuid,
        name: ShortText,
        email: Email,
        roles: Roles,
        at: DateTime<Utc>,
    },
    ChangeRoles {
        actor: Uuid,
        roles: Roles,
        at: DateTime<Utc>,
    },
    Deactivate {
        actor: Uuid,
        at: DateTime<Utc>,
    },
    SetExpertSkills {
        actor: Uuid,
        skills: Skills,
        at: DateTime<Utc>,
    },
    ChangeAvailability {
        actor: Uuid,
        available: bool,
        at: DateTime<Utc>,
    },
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct UserRegistered {
    pub name: ShortText,
    pub email: Email,
    pub roles: Roles,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct RolesChanged {
    /// The complete new set of roles.
    pub roles: Roles,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct UserDeactivated {
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ExpertSkillsSet {
    /// The complete new set of skills.
    pub skills: Skills,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct AvailabilityChanged {
    pub available: bool,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    #[serde(rename = "user.registered")]
    Registered(UserRegistered),
    #[serde(rename = "user.roles_changed")]
    RolesChanged(RolesChanged),
    #[serde(rename = "user.deactivated")]
    Deactivated(UserDeactivated),
    #[serde(rename = "user.expert_skills_set")]
    ExpertSkillsSet(ExpertSkillsSet),
    #[serde(rename = "user.availability_changed")]
    AvailabilityChanged(AvailabilityChanged),
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Registered(_) => "user.registered",
            Self::RolesChanged(_) => "user.roles_changed",
            Self::Deactivated(_) => "user.deactivated",
            Self::ExpertSkillsSet(_) => "user.expert_skills_set",
            Self::AvailabilityChanged(_) => "user.availability_changed",
        }
    }

    fn personal_fields(&self) -> &'static [&'static str] {
        match self {
            Self::Registered(_) => &["/name", "/email"],
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user not found")]
    NotFound,
    #[error("user already exists")]
    AlreadyExists,
    #[error("user is deactivated")]
    Deactivated,
    #[error("user does not hold the expert role")]
    NotExpert,
}

impl ErrorCode for UserError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "user.not_found",
            Self::AlreadyExists => "user.already_exists",
            Self::Deactivated => "user.deactivated",
            Self::NotExpert => "user.not_expert",
        }
    }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Deactivated,
}

/// One user. `Default` = not registered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    pub status: Option<UserStatus>,
    /// Empty only while not registered.
    pub roles: BTreeSet<Role>,
    pub skills: Skills,
    pub available: bool,
}

impl User {
    pub fn is_expert(&self) -> bool {
        self.roles.contains(&Role::Expert)
    }

    /// Refuses when the user does not exist or is deactivated.
    fn active(&self) -> Result<(), UserError> {
        match self.status {
            None => Err(UserError::NotFound),
            Some(UserStatus::Deactivated) => Err(UserError::Deactivated),
            Some(UserStatus::Active) => Ok(()),
        }
    }

    fn unavailable(&self, actor: Uuid, at: DateTime<Utc>) -> Option<UserEvent> {
        self.available
            .then_some(UserEvent::AvailabilityChanged(AvailabilityChanged {
                available: false,
                by: actor,
                at,
            }))
    }
}

impl Aggregate for User {
    const STREAM_TYPE: &'static str = "user";

    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn decide(&self, command: &UserCommand) -> Result<Vec<UserEvent>, UserError> {
        match command {
            UserCommand::Register {
                actor,
                name,
                email,
                roles,
                at,
            } => {
                if self.status.is_some() {
                    return Err(UserError::AlreadyExists);
                }
                Ok(vec![UserEvent::Registered(UserRegistered {
                    name: name.clone(),
                    email: email.clone(),
                    roles: roles.clone(),
                    by: *actor,
                    at: *at,
                })])
            }
            UserCommand::ChangeRoles { actor, roles, at } => {
                self.active()?;
                if &self.roles == roles.as_set() {
                    return Ok(vec![]);
                }
                let mut events = Vec::with_capacity(2);
                if !roles.contains(Role::Expert) {
                    events.extend(self.unavailable(*actor, *at));
                }
                events.push(UserEvent::RolesChanged(RolesChanged {
                    roles: roles.clone(),
                    by: *actor,
                    at: *at,
                }));
                Ok(events)
            }
            UserCommand::Deactivate { actor, at } => {
                self.active()?;
                let mut events = Vec::with_capacity(2);
                events.extend(self.unavailable(*actor, *at));
                events.push(UserEvent::Deactivated(UserDeactivated {
                    by: *actor,
                    at: *at,
                }));
                Ok(events)
            }
            UserCommand::SetExpertSkills { actor, skills, at } => {
                self.active()?;
                if !self.is_expert() {
                    return Err(UserError::NotExpert);
                }
                if &self.skills == skills {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::ExpertSkillsSet(ExpertSkillsSet {
                    skills: skills.clone(),
                    by: *actor,
                    at: *at,
                })])
            }
            UserCommand::ChangeAvailability {
                actor,
                available,
                at,
            } => {
                self.active()?;
                if !self.is_expert() {
                    return Err(UserError::NotExpert);
                }
                if self.available == *available {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::AvailabilityChanged(AvailabilityChanged {
                    available: *available,
                    by: *actor,
                    at: *at,
                })])
            }
        }
    }

    fn evolve(mut self, event: &UserEvent) -> Self {
        match event {
            UserEvent::Registered(e) => {
                self.status = Some(UserStatus::Active);
                self.roles = e.roles.as_set().clone();
            }
            UserEvent::RolesChanged(e) => self.roles = e.roles.as_set().clone(),
            UserEvent::Deactivated(_) => {
                self.status = Some(UserStatus::Deactivated);
                self.available = false;
            }
            UserEvent::ExpertSkillsSet(e) => self.skills = e.skills.clone(),
            UserEvent::AvailabilityChanged(e) => self.available = e.available,
        }
        self
    }
}

/// The catalogue entries of the user events.
pub fn event_specs() -> Vec<EventSpec> {
    let admin = "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b";
    let spec = |event_type: &'static str, schema, example| EventSpec {
        stream_type: User::STREAM_TYPE,
        event_type,
        version: 1,
        schema,
        example,
    };
    vec![
        spec(
            "user.registered",
            schemars::schema_for!(UserRegistered),
            json!({
                "name": "Priya Raman",
                "email": "priya.raman@penultimate.example",
                "roles": ["expert", "manager"],
                "by": admin,
                "at": "2024-06-03T08:00:00Z",
            }),
        ),
        spec(
            "user.roles_changed",
            schemars::schema_for!(RolesChanged),
            json!({
                "roles": ["expert"],
                "by": admin,
                "at": "2024-06-10T12:30:00Z",
            }),
        ),
        spec(
            "user.deactivated",
            schemars::schema_for!(UserDeactivated),
            json!({
                "by": admin,
                "at": "2024-12-31T17:00:00Z",
            }),
        ),
        spec(
            "user.expert_skills_set",
            schemars::schema_for!(ExpertSkillsSet),
            json!({
                "skills": ["home networking", "Smart TV", "Windows 11"],
                "by": admin,
                "at": "2024-06-03T08:05:00Z",
            }),
        ),
        spec(
            "user.availability_changed",
            schemars::schema_for!(AvailabilityChanged),
            json!({
                "available": true,
                "by": "0190a5b2-7c3d-7e4f-8a1b-00000000e001",
                "at": "2024-06-03T09:00:00Z",
            }),
        ),
    ]
}

#[cfg(test)]
mod tests;
