//! Tenant policy: value-object rules, the pure functions, given / when /
//! then for both commands, the catalogue, and property tests.

use chrono::{TimeDelta, TimeZone};
use proptest::prelude::*;

use super::*;
use crate::event::{decode, encode};
use crate::testing::given;

const ADMIN: Uuid = Uuid::from_u128(0xad01);
const ANN: Uuid = Uuid::from_u128(0x0a01);
const BOB: Uuid = Uuid::from_u128(0x0b01);

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 3, 9, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn role(name: &str) -> Approver {
    Approver::Role(name.to_owned())
}

fn level(approvers: Vec<Approver>, required: u16) -> LevelSpec {
    LevelSpec {
        approvers,
        required,
        due_secs: None,
    }
}

fn threshold(min_value_minor: i64, levels: Vec<LevelSpec>) -> ValueThreshold {
    ValueThreshold {
        min_value_minor,
        levels,
    }
}

fn tiered_policy() -> ApprovalPolicy {
    ApprovalPolicy::new(vec![ApprovalRule {
        kind: SubjectKind::Contract,
        thresholds: vec![
            threshold(
                1_000_000,
                vec![
                    level(vec![role("approver")], 1),
                    level(vec![Approver::User(ANN), Approver::User(BOB)], 2),
                ],
            ),
            threshold(0, vec![]),
            threshold(10_000, vec![level(vec![role("manager")], 1)]),
        ],
    }])
    .unwrap()
}

// --- SLA ----------------------------------------------------------------------------

#[test]
fn the_default_sla_policy_is_valid_and_tightest_for_p1() {
    let policy = SlaPolicy::default();
    for p in [Priority::P1, Priority::P2, Priority::P3, Priority::P4] {
        let x = policy.targets(p);
        assert_eq!(
            SlaTargets::new(
                x.time_to_assign_secs(),
                x.time_to_first_response_secs(),
                x.time_to_resolve_secs()
            )
            .as_ref(),
            Ok(x)
        );
    }
    for stage in SlaStage::ALL {
        assert!(policy.p1.secs(stage) <= policy.p2.secs(stage));
        assert!(policy.p2.secs(stage) <= policy.p3.secs(stage));
        assert!(policy.p3.secs(stage) <= policy.p4.secs(stage));
    }
    let json = serde_json::to_value(policy).unwrap();
    assert_eq!(json["p1"]["time_to_assign_secs"], 900);
    assert_eq!(serde_json::from_value::<SlaPolicy>(json).unwrap(), policy);
}

#[test]
fn sla_targets_refuse_bad_durations() {
    assert!(SlaTargets::new(60, 60, 60).is_ok());
    let cases = [
        ((0, 60, 60), "time_to_assign_secs"),
        ((60, 0, 60), "time_to_first_response_secs"),
        ((60, 60, 0), "time_to_resolve_secs"),
        ((120, 60, 60), "time_to_assign_secs"),
        ((60, 120, 60), "time_to_first_response_secs"),
        ((60, 60, MAX_DURATION_SECS + 1), "time_to_resolve_secs"),
    ];
    for ((a, f, r), field) in cases {
        assert_eq!(SlaTargets::new(a, f, r).unwrap_err().field, field);
    }
}

#[test]
fn sla_targets_deserialise_only_when_valid() {
    let bad = serde_json::json!({
        "time_to_assign_secs": 0,
        "time_to_first_response_secs": 60,
        "time_to_resolve_secs": 60,
    });
    assert!(serde_json::from_value::<SlaTargets>(bad).is_err());
}

#[test]
fn due_adds_the_stage_target_to_the_start() {
    let policy = SlaPolicy::default();
    assert_eq!(policy.due(Priority::P1, SlaStage::Assign, t(0)), t(15));
    assert_eq!(
        policy.due(Priority::P2, SlaStage::FirstResponse, t(0)),
        t(4 * 60)
    );
    assert_eq!(
        policy.due(Priority::P4, SlaStage::Resolve, t(0)),
        t(120 * 60)
    );
}

#[test]
fn due_saturates_instead_of_overflowing() {
    let policy = SlaPolicy::default();
    assert_eq!(
        policy.due(Priority::P4, SlaStage::Resolve, DateTime::<Utc>::MAX_UTC),
        DateTime::<Utc>::MAX_UTC
    );
}

// --- approval ----------------------------------------------------------------------

#[test]
fn approvers_serialise_as_tagged_objects() {
    assert_eq!(
        serde_json::to_value(Approver::User(ANN)).unwrap(),
        serde_json::json!({"user": ANN.to_string()})
    );
    assert_eq!(
        serde_json::to_value(role("approver")).unwrap(),
        serde_json::json!({"role": "approver"})
    );
    let back: Approver = serde_json::from_value(serde_json::json!({"role": "manager"})).unwrap();
    assert_eq!(back, role("manager"));
}

#[test]
fn levels_are_validated() {
    let ok = [
        level(vec![role("approver")], 1),
        // k is not bounded by n when a role is listed.
        level(vec![role("approver"), Approver::User(ANN)], 3),
        level(vec![Approver::User(ANN), Approver::User(BOB)], 2),
        LevelSpec {
            approvers: vec![role("manager")],
            required: 1,
            due_secs: Some(3600),
        },
    ];
    for l in ok {
        assert_eq!(l.validate("levels"), Ok(()), "{l:?}");
    }
    let bad = [
        level(vec![], 1),
        level(vec![role("approver")], 0),
        level(vec![Approver::User(ANN), Approver::User(BOB)], 3),
        level(vec![Approver::User(ANN), Approver::User(ANN)], 1),
        level(vec![role("wizard")], 1),
        LevelSpec {
            approvers: vec![role("manager")],
            required: 1,
            due_secs: Some(0),
        },
    ];
    for l in bad {
        assert!(l.validate("levels").is_err(), "{l:?}");
    }
}

#[test]
fn approval_policies_are_validated() {
    let dup_kind = ApprovalPolicy::new(vec![
        ApprovalRule {
            kind: SubjectKind::Contract,
            thresholds: vec![],
        },
        ApprovalRule {
            kind: SubjectKind::Contract,
            thresholds: vec![],
        },
    ]);
    assert!(dup_kind.is_err());
    let negative = ApprovalPolicy::new(vec![ApprovalRule {
        kind: SubjectKind::LeadDesign,
        thresholds: vec![threshold(-1, vec![])],
    }]);
    assert!(negative.is_err());
    let dup_threshold = ApprovalPolicy::new(vec![ApprovalRule {
        kind: SubjectKind::LeadDesign,
        thresholds: vec![threshold(5, vec![]), threshold(5, vec![])],
    }]);
    assert!(dup_threshold.is_err());
    let bad_level = ApprovalPolicy::new(vec![ApprovalRule {
        kind: SubjectKind::LeadDesign,
        thresholds: vec![threshold(0, vec![level(vec![], 1)])],
    }]);
    assert!(bad_level.is_err());
    let json = serde_json::json!({"rules": [{"kind": "contract", "thresholds": [
        {"min_value_minor": 0, "levels": [{"approvers": [], "required": 1, "due_secs": null}]}
    ]}]});
    assert!(serde_json::from_value::<ApprovalPolicy>(json).is_err());
}

#[test]
fn levels_for_picks_the_highest_threshold_not_above_the_value() {
    let policy = tiered_policy();
    assert_eq!(policy.levels_for(SubjectKind::Contract, 0), vec![]);
    assert_eq!(policy.levels_for(SubjectKind::Contract, 9_999), vec![]);
    assert_eq!(
        policy.levels_for(SubjectKind::Contract, 10_000),
        vec![level(vec![role("manager")], 1)]
    );
    assert_eq!(policy.levels_for(SubjectKind::Contract, 2_000_000).len(), 2);
    // No rule for lead designs: no approval needed.
    assert_eq!(
        policy.levels_for(SubjectKind::LeadDesign, 2_000_000),
        vec![]
    );
    // Thresholds are kept in ascending order.
    let mins: Vec<i64> = policy.rules()[0]
        .thresholds
        .iter()
        .map(|t| t.min_value_minor)
        .collect();
    assert_eq!(mins, [0, 10_000, 1_000_000]);
}

#[test]
fn the_default_approval_policy_asks_one_approver() {
    let policy = ApprovalPolicy::default();
    assert_eq!(
        ApprovalPolicy::new(policy.rules().to_vec()).as_ref(),
        Ok(&policy)
    );
    for kind in [SubjectKind::LeadDesign, SubjectKind::Contract] {
        let levels = policy.levels_for(kind, 123);
        assert_eq!(levels.len(), 1);
        assert_eq!(levels[0].approvers, vec![role("approver")]);
        assert_eq!(levels[0].required, 1);
    }
    assert!(ApprovalPolicy::none()
        .levels_for(SubjectKind::Contract, 1)
        .is_empty());
}

// --- the aggregate ----------------------------------------------------------------

fn set_sla(policy: SlaPolicy) -> PolicyCommand {
    PolicyCommand::SetSlaPolicy {
        actor: ADMIN,
        policy,
        at: t(0),
    }
}

fn sla_set(policy: SlaPolicy) -> PolicyEvent {
    PolicyEvent::SlaPolicySet(SlaPolicySet {
        policy,
        by: ADMIN,
        at: t(0),
    })
}

fn set_approval(policy: ApprovalPolicy) -> PolicyCommand {
    PolicyCommand::SetApprovalPolicy {
        actor: ADMIN,
        policy,
        at: t(1),
    }
}

fn approval_set(policy: ApprovalPolicy) -> PolicyEvent {
    PolicyEvent::ApprovalPolicySet(ApprovalPolicySet {
        policy,
        by: ADMIN,
        at: t(1),
    })
}

fn strict_sla() -> SlaPolicy {
    let x = SlaTargets::new(60, 120, 600).unwrap();
    SlaPolicy {
        p1: x,
        p2: x,
        p3: x,
        p4: x,
    }
}

#[test]
fn a_tenant_without_policies_uses_the_defaults() {
    let state = TenantPolicy::default();
    assert!(!state.exists());
    assert_eq!(state.sla_policy(), SlaPolicy::default());
    assert_eq!(state.approval_policy(), ApprovalPolicy::default());
}

#[test]
fn setting_the_sla_policy() {
    let state = given::<TenantPolicy>([])
        .when(&set_sla(strict_sla()))
        .then([sla_set(strict_sla())]);
    assert!(state.exists());
    assert_eq!(state.sla_policy(), strict_sla());
    assert_eq!(state.approval_policy(), ApprovalPolicy::default());
    given::<TenantPolicy>([sla_set(strict_sla())])
        .when(&set_sla(SlaPolicy::default()))
        .then([sla_set(SlaPolicy::default())]);
}

#[test]
fn setting_the_same_sla_policy_again_is_a_no_op() {
    given::<TenantPolicy>([sla_set(strict_sla())])
        .when(&set_sla(strict_sla()))
        .then([]);
}

#[test]
fn setting_the_approval_policy() {
    let state = given::<TenantPolicy>([sla_set(strict_sla())])
        .when(&set_approval(tiered_policy()))
        .then([approval_set(tiered_policy())]);
    assert_eq!(state.approval_policy(), tiered_policy());
    assert_eq!(state.sla_policy(), strict_sla());
}

#[test]
fn setting_the_same_approval_policy_again_is_a_no_op() {
    given::<TenantPolicy>([approval_set(tiered_policy())])
        .when(&set_approval(tiered_policy()))
        .then([]);
}

#[test]
fn every_catalogue_example_decodes() {
    let specs = event_specs();
    assert_eq!(specs.len(), 2);
    for spec in specs {
        assert_eq!(spec.stream_type, "tenant_policy");
        let event: PolicyEvent = decode(spec.event_type, spec.version, spec.example.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", spec.event_type));
        assert_eq!(event.event_type(), spec.event_type);
        assert!(event.personal_fields().is_empty());
        assert_eq!(encode(&event).data, spec.example, "{}", spec.event_type);
    }
}

#[test]
fn event_types_match_their_serde_names() {
    for event in [sla_set(strict_sla()), approval_set(tiered_policy())] {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], event.event_type());
    }
}

// --- properties --------------------------------------------------------------------

fn any_priority() -> impl Strategy<Value = Priority> {
    prop::sample::select(vec![Priority::P1, Priority::P2, Priority::P3, Priority::P4])
}

fn any_targets() -> impl Strategy<Value = SlaTargets> {
    (1..=MAX_DURATION_SECS)
        .prop_flat_map(|resolve| (1..=resolve, 1..=resolve, Just(resolve)))
        .prop_map(|(a, f, r)| SlaTargets::new(a, f, r).unwrap())
}

fn any_approver() -> impl Strategy<Value = Approver> {
    prop_oneof![
        (0u128..4).prop_map(|i| Approver::User(Uuid::from_u128(i))),
        prop::sample::select(vec!["approver", "manager", "wizard"]).prop_map(role),
    ]
}

fn any_level() -> impl Strategy<Value = LevelSpec> {
    (
        prop::collection::vec(any_approver(), 0..4),
        0u16..5,
        prop::option::of(0u64..100_000),
    )
        .prop_map(|(approvers, required, due_secs)| LevelSpec {
            approvers,
            required,
            due_secs,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn due_is_never_before_the_start(
        targets in any_targets(),
        priority in any_priority(),
        from_secs in -8_000_000_000_000i64..8_000_000_000_000,
    ) {
        let policy = SlaPolicy { p1: targets, p2: targets, p3: targets, p4: targets };
        let from = DateTime::<Utc>::from_timestamp(from_secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
        for stage in SlaStage::ALL {
            prop_assert!(policy.due(priority, stage, from) > from || from == DateTime::<Utc>::MAX_UTC);
        }
        prop_assert!(policy.due(priority, SlaStage::Assign, from) <= policy.due(priority, SlaStage::Resolve, from));
    }

    #[test]
    fn valid_policies_survive_serialisation_and_levels_are_valid(
        thresholds in prop::collection::vec((0i64..1_000, prop::collection::vec(any_level(), 0..3)), 0..4),
        value in -10i64..2_000,
    ) {
        let rule = ApprovalRule {
            kind: SubjectKind::LeadDesign,
            thresholds: thresholds
                .into_iter()
                .map(|(min, levels)| threshold(min, levels))
                .collect(),
        };
        let Ok(policy) = ApprovalPolicy::new(vec![rule.clone()]) else {
            return Ok(());
        };
        let json = serde_json::to_value(&policy).unwrap();
        prop_assert_eq!(serde_json::from_value::<ApprovalPolicy>(json).unwrap(), policy.clone());
        let levels = policy.levels_for(SubjectKind::LeadDesign, value);
        for l in &levels {
            prop_assert_eq!(l.validate("levels"), Ok(()));
        }
        // Reference: the threshold with the greatest minimum not above the value.
        let expected = rule
            .thresholds
            .iter()
            .filter(|t| t.min_value_minor <= value)
            .max_by_key(|t| t.min_value_minor)
            .map(|t| t.levels.clone())
            .unwrap_or_default();
        prop_assert_eq!(levels, expected);
    }
}
