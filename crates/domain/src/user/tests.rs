//! Given / when / then for every user command, value-object parsing, the
//! catalogue, and property tests.

use chrono::{TimeDelta, TimeZone};
use proptest::prelude::*;

use super::*;
use crate::event::{decode, encode};
use crate::testing::given;

const ADMIN: Uuid = Uuid::from_u128(0xad01);
const SELF: Uuid = Uuid::from_u128(0xe001);

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 3, 9, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn short(s: &str) -> ShortText {
    ShortText::parse("text", s).unwrap()
}

fn roles(names: &[&str]) -> Roles {
    Roles::parse("roles", names.iter().copied()).unwrap()
}

fn skills(names: &[&str]) -> Skills {
    Skills::new(names.iter().map(|n| short(n)))
}

fn register(role_names: &[&str]) -> UserCommand {
    UserCommand::Register {
        actor: ADMIN,
        name: short("Priya Raman"),
        email: Email::parse("email", "priya@example.com").unwrap(),
        roles: roles(role_names),
        at: t(0),
    }
}

fn registered(role_names: &[&str]) -> UserEvent {
    UserEvent::Registered(UserRegistered {
        name: short("Priya Raman"),
        email: Email::parse("email", "priya@example.com").unwrap(),
        roles: roles(role_names),
        by: ADMIN,
        at: t(0),
    })
}

fn change_roles(role_names: &[&str]) -> UserCommand {
    UserCommand::ChangeRoles {
        actor: ADMIN,
        roles: roles(role_names),
        at: t(10),
    }
}

fn roles_changed(role_names: &[&str]) -> UserEvent {
    UserEvent::RolesChanged(RolesChanged {
        roles: roles(role_names),
        by: ADMIN,
        at: t(10),
    })
}

fn deactivate() -> UserCommand {
    UserCommand::Deactivate {
        actor: ADMIN,
        at: t(20),
    }
}

fn deactivated() -> UserEvent {
    UserEvent::Deactivated(UserDeactivated {
        by: ADMIN,
        at: t(20),
    })
}

fn set_skills(names: &[&str]) -> UserCommand {
    UserCommand::SetExpertSkills {
        actor: ADMIN,
        skills: skills(names),
        at: t(5),
    }
}

fn skills_set(names: &[&str]) -> UserEvent {
    UserEvent::ExpertSkillsSet(ExpertSkillsSet {
        skills: skills(names),
        by: ADMIN,
        at: t(5),
    })
}

fn change_availability(available: bool) -> UserCommand {
    UserCommand::ChangeAvailability {
        actor: SELF,
        available,
        at: t(7),
    }
}

fn availability_changed(available: bool, by: Uuid, at: DateTime<Utc>) -> UserEvent {
    UserEvent::AvailabilityChanged(AvailabilityChanged { available, by, at })
}

fn every_command() -> Vec<UserCommand> {
    vec![
        register(&["expert"]),
        change_roles(&["manager"]),
        deactivate(),
        set_skills(&["wi-fi"]),
        change_availability(true),
    ]
}

// --- register ------------------------------------------------------------------

#[test]
fn register_creates_an_active_user() {
    let state = given::<User>([])
        .when(&register(&["expert", "manager"]))
        .then([registered(&["expert", "manager"])]);
    assert_eq!(state.status, Some(UserStatus::Active));
    assert!(state.is_expert());
    assert!(!state.available, "a new expert starts unavailable");
    assert!(state.skills.is_empty());
}

#[test]
fn register_twice_is_refused() {
    given::<User>([registered(&["customer"])])
        .when(&register(&["customer"]))
        .then_err("user.already_exists");
    given::<User>([registered(&["customer"]), deactivated()])
        .when(&register(&["customer"]))
        .then_err("user.already_exists");
}

#[test]
fn every_other_command_on_a_missing_user_is_not_found() {
    for command in every_command().into_iter().skip(1) {
        given::<User>([]).when(&command).then_err("user.not_found");
    }
}

#[test]
fn every_command_on_a_deactivated_user_is_refused() {
    for command in every_command().into_iter().skip(1) {
        given::<User>([registered(&["expert"]), deactivated()])
            .when(&command)
            .then_err("user.deactivated");
    }
}

// --- roles ---------------------------------------------------------------------

#[test]
fn roles_change_as_a_whole() {
    let state = given::<User>([registered(&["customer"])])
        .when(&change_roles(&["expert", "approver"]))
        .then([roles_changed(&["approver", "expert"])]);
    assert_eq!(state.roles, BTreeSet::from([Role::Expert, Role::Approver]));
}

#[test]
fn the_same_roles_again_is_a_no_op() {
    given::<User>([registered(&["customer", "sales"])])
        .when(&change_roles(&["sales", "customer"]))
        .then([]);
}

#[test]
fn taking_the_expert_role_from_an_available_expert_makes_them_unavailable_first() {
    let state = given::<User>([
        registered(&["expert"]),
        availability_changed(true, SELF, t(7)),
    ])
    .when(&change_roles(&["manager"]))
    .then([
        availability_changed(false, ADMIN, t(10)),
        roles_changed(&["manager"]),
    ]);
    assert!(!state.available);
    // An unavailable expert just loses the role.
    given::<User>([registered(&["expert"])])
        .when(&change_roles(&["manager"]))
        .then([roles_changed(&["manager"])]);
}

// --- deactivate ------------------------------------------------------------------

#[test]
fn deactivate_deactivates() {
    let state = given::<User>([registered(&["customer"])])
        .when(&deactivate())
        .then([deactivated()]);
    assert_eq!(state.status, Some(UserStatus::Deactivated));
}

#[test]
fn deactivating_an_available_expert_makes_them_unavailable_first() {
    given::<User>([
        registered(&["expert"]),
        availability_changed(true, SELF, t(7)),
    ])
    .when(&deactivate())
    .then([availability_changed(false, ADMIN, t(20)), deactivated()]);
}

// --- skills ----------------------------------------------------------------------

#[test]
fn an_expert_gets_skills() {
    let state = given::<User>([registered(&["expert"])])
        .when(&set_skills(&["Wi-Fi", "smart tv"]))
        .then([skills_set(&["smart tv", "Wi-Fi"])]);
    assert!(state.skills.has("wi-fi"));
    assert!(state.skills.has(" SMART TV "));
    assert!(!state.skills.has("printers"));
}

#[test]
fn the_same_skills_again_is_a_no_op() {
    given::<User>([registered(&["expert"]), skills_set(&["wi-fi", "tv"])])
        .when(&set_skills(&["tv", "wi-fi", "TV"]))
        .then([]);
}

#[test]
fn skills_can_be_cleared() {
    let state = given::<User>([registered(&["expert"]), skills_set(&["wi-fi"])])
        .when(&set_skills(&[]))
        .then([skills_set(&[])]);
    assert!(state.skills.is_empty());
}

#[test]
fn skills_for_a_non_expert_are_refused() {
    given::<User>([registered(&["customer", "manager"])])
        .when(&set_skills(&["wi-fi"]))
        .then_err("user.not_expert");
}

// --- availability ------------------------------------------------------------------

#[test]
fn an_expert_becomes_available_and_unavailable() {
    let state = given::<User>([registered(&["expert"])])
        .when(&change_availability(true))
        .then([availability_changed(true, SELF, t(7))]);
    assert!(state.available);
    given::<User>([
        registered(&["expert"]),
        availability_changed(true, SELF, t(7)),
    ])
    .when(&change_availability(false))
    .then([availability_changed(false, SELF, t(7))]);
}

#[test]
fn the_same_availability_again_is_a_no_op() {
    given::<User>([registered(&["expert"])])
        .when(&change_availability(false))
        .then([]);
}

#[test]
fn availability_for_a_non_expert_is_refused() {
    given::<User>([registered(&["customer"])])
        .when(&change_availability(true))
        .then_err("user.not_expert");
}

// --- value objects -------------------------------------------------------------------

#[test]
fn roles_parse_from_the_fixed_set_only() {
    for role in Role::ALL {
        assert_eq!(Role::parse("role", role.as_str()).unwrap(), role);
        assert_eq!(
            serde_json::to_value(role).unwrap(),
            serde_json::json!(role.as_str())
        );
    }
    assert!(Role::parse("role", "Admin").is_err());
    assert!(Role::parse("role", "root").is_err());
    assert!(Roles::parse("roles", []).is_err());
    assert!(Roles::parse("roles", ["expert", "wizard"]).is_err());
    assert_eq!(roles(&["expert", "expert"]).as_set().len(), 1);
}

#[test]
fn roles_deserialise_only_when_valid() {
    let ok: Roles = serde_json::from_str(r#"["manager","admin"]"#).unwrap();
    assert!(ok.contains(Role::Admin));
    assert_eq!(
        serde_json::to_string(&ok).unwrap(),
        r#"["manager","admin"]"#
    );
    assert!(serde_json::from_str::<Roles>("[]").is_err());
    assert!(serde_json::from_str::<Roles>(r#"["owner"]"#).is_err());
}

#[test]
fn skills_are_distinct_and_ordered_ignoring_case() {
    let s = skills(&["Wi-Fi", "audio", "wi-fi", "Bluetooth"]);
    let names: Vec<&str> = s.as_slice().iter().map(ShortText::as_str).collect();
    assert_eq!(names, ["audio", "Bluetooth", "Wi-Fi"]);
    let back: Skills = serde_json::from_str(r#"["b","A","a"]"#).unwrap();
    let names: Vec<&str> = back.as_slice().iter().map(ShortText::as_str).collect();
    assert_eq!(names, ["A", "b"]);
    assert!(serde_json::from_str::<Skills>(r#"["  "]"#).is_err());
}

// --- events and catalogue --------------------------------------------------------------

fn one_of_each_event() -> Vec<UserEvent> {
    vec![
        registered(&["expert"]),
        roles_changed(&["manager"]),
        deactivated(),
        skills_set(&["wi-fi"]),
        availability_changed(true, SELF, t(7)),
    ]
}

#[test]
fn event_types_match_their_serde_names_and_round_trip() {
    for event in one_of_each_event() {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], event.event_type());
        let encoded = encode(&event);
        let back: UserEvent =
            decode(encoded.event_type, encoded.schema_version, encoded.data).unwrap();
        assert_eq!(back, event);
    }
}

#[test]
fn personal_fields_point_at_name_and_email() {
    let event = registered(&["customer"]);
    let data = encode(&event).data;
    assert_eq!(event.personal_fields(), ["/name", "/email"]);
    for pointer in event.personal_fields() {
        assert!(data.pointer(pointer).is_some_and(|v| v.is_string()));
    }
    for event in one_of_each_event().iter().skip(1) {
        assert!(event.personal_fields().is_empty());
    }
}

#[test]
fn every_catalogue_example_decodes() {
    let specs = event_specs();
    assert_eq!(specs.len(), one_of_each_event().len());
    for spec in specs {
        assert_eq!(spec.stream_type, "user");
        let event: UserEvent = decode(spec.event_type, spec.version, spec.example.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", spec.event_type));
        assert_eq!(event.event_type(), spec.event_type);
        assert_eq!(encode(&event).data, spec.example, "{}", spec.event_type);
    }
}

#[test]
fn error_codes_are_distinct_and_dotted() {
    let errors = [
        UserError::NotFound,
        UserError::AlreadyExists,
        UserError::Deactivated,
        UserError::NotExpert,
    ];
    let codes: BTreeSet<&str> = errors.iter().map(ErrorCode::code).collect();
    assert_eq!(codes.len(), errors.len());
    for error in &errors {
        assert!(error.code().starts_with("user."));
        let message = error.to_string();
        assert_eq!(message, message.to_lowercase());
        assert!(!message.ends_with('.'));
    }
}

// --- properties ----------------------------------------------------------------------

fn any_roles() -> impl Strategy<Value = Roles> {
    prop::collection::btree_set(prop::sample::select(Role::ALL.to_vec()), 1..4)
        .prop_map(|set| Roles::new("roles", set).unwrap())
}

fn any_skills() -> impl Strategy<Value = Skills> {
    prop::collection::vec(
        prop::sample::select(vec!["wi-fi", "Wi-Fi", "tv", "audio", "printers"]),
        0..4,
    )
    .prop_map(|names| Skills::new(names.into_iter().map(short)))
}

fn any_command() -> impl Strategy<Value = UserCommand> {
    let at = (0i64..10_000).prop_map(t);
    prop_oneof![
        1 => (any_roles(), at.clone()).prop_map(|(roles, at)| UserCommand::Register {
            actor: ADMIN,
            name: short("Priya"),
            email: Email::parse("email", "priya@example.com").unwrap(),
            roles,
            at,
        }),
        2 => (any_roles(), at.clone())
            .prop_map(|(roles, at)| UserCommand::ChangeRoles { actor: ADMIN, roles, at }),
        1 => at.clone().prop_map(|at| UserCommand::Deactivate { actor: ADMIN, at }),
        2 => (any_skills(), at.clone())
            .prop_map(|(skills, at)| UserCommand::SetExpertSkills { actor: ADMIN, skills, at }),
        3 => (any::<bool>(), at).prop_map(|(available, at)| UserCommand::ChangeAvailability {
            actor: SELF,
            available,
            at,
        }),
    ]
}

fn check_state(state: &User) -> Result<(), TestCaseError> {
    match state.status {
        None => prop_assert_eq!(state, &User::default()),
        Some(_) => prop_assert!(!state.roles.is_empty()),
    }
    if state.available {
        prop_assert_eq!(state.status, Some(UserStatus::Active));
        prop_assert!(state.is_expert());
    }
    if !state.skills.is_empty() {
        prop_assert!(state.status.is_some());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_sequences_keep_the_invariants(commands in prop::collection::vec(any_command(), 1..40)) {
        let mut state = User::default();
        let mut history = Vec::new();
        for command in &commands {
            match state.decide(command) {
                Ok(events) => {
                    for event in &events {
                        state = state.clone().evolve(event);
                        check_state(&state)?;
                    }
                    history.extend(events);
                }
                Err(UserError::NotFound) => prop_assert!(state.status.is_none()),
                Err(UserError::Deactivated) => {
                    prop_assert_eq!(state.status, Some(UserStatus::Deactivated));
                }
                Err(UserError::NotExpert) => prop_assert!(!state.is_expert()),
                Err(UserError::AlreadyExists) => prop_assert!(state.status.is_some()),
            }
        }
        prop_assert_eq!(User::fold(history.iter()), state);
    }

    #[test]
    fn decide_never_panics_on_any_state(
        events in prop::collection::vec(any_event(), 0..12),
        command in any_command(),
    ) {
        let state = User::fold(events.iter());
        let _ = state.decide(&command);
    }
}

/// Any event in any order: states no command sequence can reach.
fn any_event() -> impl Strategy<Value = UserEvent> {
    prop_oneof![
        any_roles().prop_map(|roles| UserEvent::Registered(UserRegistered {
            name: short("x"),
            email: Email::parse("email", "x@example.com").unwrap(),
            roles,
            by: ADMIN,
            at: t(0),
        })),
        any_roles().prop_map(|roles| UserEvent::RolesChanged(RolesChanged {
            roles,
            by: ADMIN,
            at: t(0),
        })),
        Just(deactivated()),
        any_skills().prop_map(|skills| UserEvent::ExpertSkillsSet(ExpertSkillsSet {
            skills,
            by: ADMIN,
            at: t(0),
        })),
        any::<bool>().prop_map(|a| availability_changed(a, SELF, t(0))),
    ]
}
