use chrono::{DateTime, Days, NaiveDate, Utc};
use proptest::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use super::*;
use crate::event::{decode, encode};
use crate::testing::given;
use crate::value::Currency;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn short(text: &str) -> ShortText {
    ShortText::parse("text", text).unwrap()
}

fn long(text: &str) -> LongText {
    LongText::parse("text", text).unwrap()
}

fn eur(amount_minor: i64) -> Money {
    Money::new(
        "value",
        amount_minor,
        Currency::parse("currency", "EUR").unwrap(),
    )
    .unwrap()
}

fn owner() -> Uuid {
    Uuid::from_u128(0x0190_f3a1_6d2e_7c4b_9a51_3f0e_8b2c_7d10)
}

fn approval() -> Uuid {
    Uuid::from_u128(0x0190_f3c4_1b7a_7e02_8d44_5a9c_0e6f_1b23)
}

fn other_approval() -> Uuid {
    Uuid::from_u128(0x0190_f3c4_1b7a_7e02_8d44_5a9c_0e6f_ffff)
}

fn parties() -> Vec<Party> {
    vec![
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
    ]
}

fn counterparty() -> Counterparty {
    Counterparty {
        organisation: short("Northwind Logistics GmbH"),
        contact: Contact {
            name: short("Jonas Weber"),
            email: Email::parse("email", "jonas.weber@northwind.example").unwrap(),
        },
    }
}

fn draft_command() -> DraftContract {
    DraftContract {
        title: short("Managed network services agreement"),
        parties: parties(),
        counterparty: counterparty(),
        value: eur(1_250_050),
        start_date: date("2025-03-01"),
        end_date: date("2026-02-28"),
        body: long("1. Scope. Managed WAN services."),
        owner: owner(),
        at: at("2025-02-03T09:15:00Z"),
    }
}

fn draft() -> ContractCommand {
    ContractCommand::Draft(draft_command())
}

fn drafted() -> ContractEvent {
    let d = draft_command();
    ContractEvent::Drafted(ContractDrafted {
        title: d.title,
        parties: d.parties,
        counterparty: d.counterparty,
        value: d.value,
        start_date: d.start_date,
        end_date: d.end_date,
        body: d.body,
        owner: d.owner,
        at: d.at,
    })
}

fn new_terms() -> Terms {
    Terms {
        value: eur(1_380_000),
        start_date: date("2025-04-01"),
        end_date: date("2026-03-31"),
    }
}

fn amended(version: u32) -> ContractEvent {
    ContractEvent::Amended(ContractAmended {
        version,
        terms: Some(new_terms()),
        body: None,
        by: owner(),
        at: at("2025-02-10T14:02:31Z"),
    })
}

fn submit() -> ContractCommand {
    ContractCommand::SubmitForApproval {
        approval_id: approval(),
        actor: owner(),
        at: at("2025-02-10T14:05:00Z"),
    }
}

fn submitted(version: u32) -> ContractEvent {
    ContractEvent::SubmittedForApproval(ContractSubmittedForApproval {
        approval_id: approval(),
        version,
        by: owner(),
        at: at("2025-02-10T14:05:00Z"),
    })
}

fn approve() -> ContractCommand {
    ContractCommand::Approve {
        approval_id: approval(),
        at: at("2025-02-12T10:41:17Z"),
    }
}

fn approved() -> ContractEvent {
    ContractEvent::Approved(ContractApproved {
        approval_id: approval(),
        at: at("2025-02-12T10:41:17Z"),
    })
}

fn reject() -> ContractCommand {
    ContractCommand::Reject {
        approval_id: approval(),
        reason: long("Liability cap too high."),
        at: at("2025-02-11T16:20:00Z"),
    }
}

fn rejected() -> ContractEvent {
    ContractEvent::Rejected(ContractRejected {
        approval_id: approval(),
        reason: long("Liability cap too high."),
        at: at("2025-02-11T16:20:00Z"),
    })
}

fn sign() -> ContractCommand {
    ContractCommand::Sign {
        signatory_name: short("Jonas Weber"),
        actor: owner(),
        at: at("2025-02-20T11:00:00Z"),
    }
}

fn signed() -> ContractEvent {
    ContractEvent::Signed(ContractSigned {
        signatory_name: short("Jonas Weber"),
        by: owner(),
        at: at("2025-02-20T11:00:00Z"),
    })
}

fn activate(when: &str) -> ContractCommand {
    ContractCommand::Activate { at: at(when) }
}

fn activated() -> ContractEvent {
    ContractEvent::Activated(ContractActivated {
        at: at("2025-03-01T00:00:05Z"),
    })
}

fn renew(new_end_date: &str) -> ContractCommand {
    ContractCommand::Renew {
        new_end_date: date(new_end_date),
        actor: owner(),
        at: at("2026-01-15T08:30:00Z"),
    }
}

fn renewed(new_end_date: &str) -> ContractEvent {
    ContractEvent::Renewed(ContractRenewed {
        new_end_date: date(new_end_date),
        by: owner(),
        at: at("2026-01-15T08:30:00Z"),
    })
}

fn terminate() -> ContractCommand {
    ContractCommand::Terminate {
        reason: long("Warehouse closed."),
        actor: owner(),
        at: at("2025-06-30T17:00:00Z"),
    }
}

fn terminated() -> ContractEvent {
    ContractEvent::Terminated(ContractTerminated {
        reason: long("Warehouse closed."),
        by: owner(),
        at: at("2025-06-30T17:00:00Z"),
    })
}

fn expire(when: &str) -> ContractCommand {
    ContractCommand::Expire { at: at(when) }
}

fn expired(when: &str) -> ContractEvent {
    ContractEvent::Expired(ContractExpired { at: at(when) })
}

fn legal() -> Grantee {
    Grantee::Role("legal".to_owned())
}

fn colleague() -> Grantee {
    Grantee::User(Uuid::from_u128(0x0190_f3b7_22c9_7a10_b3e5_6c1d_9f0a_4e88))
}

fn share(grantee: Grantee) -> ContractCommand {
    ContractCommand::Share {
        grantee,
        actor: owner(),
        at: at("2025-02-03T09:20:00Z"),
    }
}

fn shared(grantee: Grantee) -> ContractEvent {
    ContractEvent::Shared(ContractShared {
        grantee,
        by: owner(),
        at: at("2025-02-03T09:20:00Z"),
    })
}

fn unshare(grantee: Grantee) -> ContractCommand {
    ContractCommand::Unshare {
        grantee,
        actor: owner(),
        at: at("2025-03-05T12:00:00Z"),
    }
}

fn unshared(grantee: Grantee) -> ContractEvent {
    ContractEvent::Unshared(ContractUnshared {
        grantee,
        by: owner(),
        at: at("2025-03-05T12:00:00Z"),
    })
}

/// The events of a contract that is active.
fn active() -> Vec<ContractEvent> {
    vec![drafted(), submitted(1), approved(), signed(), activated()]
}

fn with(
    mut events: Vec<ContractEvent>,
    more: impl IntoIterator<Item = ContractEvent>,
) -> Vec<ContractEvent> {
    events.extend(more);
    events
}

// ---------------------------------------------------------------------------
// Draft
// ---------------------------------------------------------------------------

#[test]
fn drafting_creates_version_1() {
    let state = given::<Contract>([]).when(&draft()).then([drafted()]);
    let details = state.details().unwrap();
    assert_eq!(details.status, ContractStatus::Draft);
    assert_eq!(details.version, 1);
    assert_eq!(details.terms.value, eur(1_250_050));
    assert_eq!(details.owner, owner());
    assert!(details.shared_with.is_empty());
}

#[test]
fn drafting_twice_is_refused() {
    given::<Contract>([drafted()])
        .when(&draft())
        .then_err("contract.already_exists");
}

#[test]
fn drafting_without_parties_is_refused() {
    let command = ContractCommand::Draft(DraftContract {
        parties: vec![],
        ..draft_command()
    });
    given::<Contract>([])
        .when(&command)
        .then_err("contract.no_parties");
}

#[test]
fn drafting_with_an_end_not_after_the_start_is_refused() {
    for end_date in ["2025-03-01", "2025-02-28"] {
        let command = ContractCommand::Draft(DraftContract {
            end_date: date(end_date),
            ..draft_command()
        });
        given::<Contract>([])
            .when(&command)
            .then_err("contract.invalid_term");
    }
}

// ---------------------------------------------------------------------------
// Amend
// ---------------------------------------------------------------------------

#[test]
fn amending_terms_makes_a_new_version() {
    let command = ContractCommand::Amend {
        terms: Some(new_terms()),
        body: None,
        actor: owner(),
        at: at("2025-02-10T14:02:31Z"),
    };
    let state = given::<Contract>([drafted()])
        .when(&command)
        .then([amended(2)]);
    let details = state.details().unwrap();
    assert_eq!(details.version, 2);
    assert_eq!(details.terms, new_terms());
    assert_eq!(details.body, long("1. Scope. Managed WAN services."));
}

#[test]
fn amending_the_body_keeps_the_terms() {
    let command = ContractCommand::Amend {
        terms: None,
        body: Some(long("1. Scope. Managed WAN and LAN services.")),
        actor: owner(),
        at: at("2025-02-10T14:02:31Z"),
    };
    let state = given::<Contract>([drafted(), amended(2)])
        .when(&command)
        .then([ContractEvent::Amended(ContractAmended {
            version: 3,
            terms: None,
            body: Some(long("1. Scope. Managed WAN and LAN services.")),
            by: owner(),
            at: at("2025-02-10T14:02:31Z"),
        })]);
    let details = state.details().unwrap();
    assert_eq!(details.version, 3);
    assert_eq!(details.terms, new_terms());
    assert_eq!(
        details.body,
        long("1. Scope. Managed WAN and LAN services.")
    );
}

#[test]
fn amending_a_rejected_contract_makes_it_a_draft_again() {
    let command = ContractCommand::Amend {
        terms: Some(new_terms()),
        body: None,
        actor: owner(),
        at: at("2025-02-10T14:02:31Z"),
    };
    let state = given::<Contract>([drafted(), submitted(1), rejected()])
        .when(&command)
        .then([amended(2)]);
    let details = state.details().unwrap();
    assert_eq!(details.status, ContractStatus::Draft);
    assert_eq!(details.rejection_reason, None);
}

#[test]
fn amending_with_nothing_new_is_refused() {
    let command = ContractCommand::Amend {
        terms: None,
        body: None,
        actor: owner(),
        at: at("2025-02-10T14:02:31Z"),
    };
    given::<Contract>([drafted()])
        .when(&command)
        .then_err("contract.nothing_to_amend");
}

#[test]
fn amending_with_an_invalid_term_is_refused() {
    let command = ContractCommand::Amend {
        terms: Some(Terms {
            end_date: date("2025-03-31"),
            ..new_terms()
        }),
        body: None,
        actor: owner(),
        at: at("2025-02-10T14:02:31Z"),
    };
    given::<Contract>([drafted()])
        .when(&command)
        .then_err("contract.invalid_term");
}

#[test]
fn amending_outside_draft_or_rejected_is_refused() {
    let command = ContractCommand::Amend {
        terms: None,
        body: Some(long("Late change.")),
        actor: owner(),
        at: at("2025-02-10T14:02:31Z"),
    };
    for events in [
        vec![drafted(), submitted(1)],
        vec![drafted(), submitted(1), approved()],
        active(),
    ] {
        given::<Contract>(events)
            .when(&command)
            .then_err("contract.wrong_status");
    }
    given::<Contract>([])
        .when(&command)
        .then_err("contract.not_found");
}

#[test]
fn amending_past_the_last_version_number_is_refused() {
    let command = ContractCommand::Amend {
        terms: None,
        body: Some(long("Once more.")),
        actor: owner(),
        at: at("2025-02-10T14:02:31Z"),
    };
    given::<Contract>([drafted(), amended(u32::MAX)])
        .when(&command)
        .then_err("contract.version_limit");
}

// ---------------------------------------------------------------------------
// Approval
// ---------------------------------------------------------------------------

#[test]
fn submitting_records_the_approval_and_version() {
    let state = given::<Contract>([drafted(), amended(2)])
        .when(&submit())
        .then([submitted(2)]);
    let details = state.details().unwrap();
    assert_eq!(details.status, ContractStatus::PendingApproval);
    assert_eq!(details.pending_approval, Some(approval()));
}

#[test]
fn a_rejected_contract_can_be_submitted_again() {
    given::<Contract>([drafted(), submitted(1), rejected()])
        .when(&submit())
        .then([submitted(1)]);
}

#[test]
fn submitting_twice_or_a_missing_contract_is_refused() {
    given::<Contract>([drafted(), submitted(1)])
        .when(&submit())
        .then_err("contract.wrong_status");
    given::<Contract>(active())
        .when(&submit())
        .then_err("contract.wrong_status");
    given::<Contract>([])
        .when(&submit())
        .then_err("contract.not_found");
}

#[test]
fn approving_the_pending_approval() {
    let state = given::<Contract>([drafted(), submitted(1)])
        .when(&approve())
        .then([approved()]);
    let details = state.details().unwrap();
    assert_eq!(details.status, ContractStatus::Approved);
    assert_eq!(details.pending_approval, None);
}

#[test]
fn rejecting_the_pending_approval() {
    let state = given::<Contract>([drafted(), submitted(1)])
        .when(&reject())
        .then([rejected()]);
    let details = state.details().unwrap();
    assert_eq!(details.status, ContractStatus::Rejected);
    assert_eq!(
        details.rejection_reason,
        Some(long("Liability cap too high."))
    );
}

#[test]
fn only_the_pending_approval_decides() {
    let approve_other = ContractCommand::Approve {
        approval_id: other_approval(),
        at: at("2025-02-12T10:41:17Z"),
    };
    let reject_other = ContractCommand::Reject {
        approval_id: other_approval(),
        reason: long("No."),
        at: at("2025-02-12T10:41:17Z"),
    };
    for command in [approve_other, reject_other] {
        given::<Contract>([drafted(), submitted(1)])
            .when(&command)
            .then_err("contract.approval_mismatch");
    }
}

#[test]
fn approving_or_rejecting_when_not_pending_is_refused() {
    for command in [approve(), reject()] {
        given::<Contract>([drafted()])
            .when(&command)
            .then_err("contract.wrong_status");
        given::<Contract>([drafted(), submitted(1), approved()])
            .when(&command)
            .then_err("contract.wrong_status");
        given::<Contract>([])
            .when(&command)
            .then_err("contract.not_found");
    }
}

// ---------------------------------------------------------------------------
// Signature and activation
// ---------------------------------------------------------------------------

#[test]
fn signing_an_approved_contract() {
    let state = given::<Contract>([drafted(), submitted(1), approved()])
        .when(&sign())
        .then([signed()]);
    let details = state.details().unwrap();
    assert_eq!(details.status, ContractStatus::Signed);
    assert_eq!(details.signatory_name, Some(short("Jonas Weber")));
    assert_eq!(details.signed_at, Some(at("2025-02-20T11:00:00Z")));
}

#[test]
fn signing_before_approval_is_refused() {
    given::<Contract>([drafted(), submitted(1)])
        .when(&sign())
        .then_err("contract.wrong_status");
    given::<Contract>([drafted(), submitted(1), approved(), signed()])
        .when(&sign())
        .then_err("contract.wrong_status");
}

#[test]
fn activating_on_the_start_date() {
    let state = given::<Contract>([drafted(), submitted(1), approved(), signed()])
        .when(&activate("2025-03-01T00:00:05Z"))
        .then([activated()]);
    assert_eq!(state.status(), Some(ContractStatus::Active));
}

#[test]
fn activating_before_the_start_date_is_refused() {
    given::<Contract>([drafted(), submitted(1), approved(), signed()])
        .when(&activate("2025-02-28T23:59:59Z"))
        .then_err("contract.not_yet_started");
}

#[test]
fn activating_an_unsigned_contract_is_refused() {
    given::<Contract>([drafted(), submitted(1), approved()])
        .when(&activate("2025-03-01T00:00:05Z"))
        .then_err("contract.wrong_status");
    given::<Contract>(active())
        .when(&activate("2025-03-01T00:00:05Z"))
        .then_err("contract.wrong_status");
}

// ---------------------------------------------------------------------------
// Renewal, termination, expiry
// ---------------------------------------------------------------------------

#[test]
fn renewing_moves_the_end_date_and_stays_active() {
    let state = given::<Contract>(active())
        .when(&renew("2027-02-28"))
        .then([renewed("2027-02-28")]);
    let details = state.details().unwrap();
    assert_eq!(details.status, ContractStatus::Active);
    assert_eq!(details.terms.end_date, date("2027-02-28"));
    assert_eq!(details.terms.start_date, date("2025-03-01"));
}

#[test]
fn renewing_to_an_end_not_after_the_current_end_is_refused() {
    for new_end in ["2026-02-28", "2026-01-31"] {
        given::<Contract>(active())
            .when(&renew(new_end))
            .then_err("contract.invalid_term");
    }
    given::<Contract>(with(active(), [renewed("2027-02-28")]))
        .when(&renew("2027-01-01"))
        .then_err("contract.invalid_term");
}

#[test]
fn renewing_an_inactive_contract_is_refused() {
    given::<Contract>([drafted(), submitted(1), approved(), signed()])
        .when(&renew("2027-02-28"))
        .then_err("contract.wrong_status");
    given::<Contract>(with(active(), [terminated()]))
        .when(&renew("2027-02-28"))
        .then_err("contract.wrong_status");
}

#[test]
fn terminating_an_active_contract() {
    let state = given::<Contract>(active())
        .when(&terminate())
        .then([terminated()]);
    assert_eq!(state.status(), Some(ContractStatus::Terminated));
}

#[test]
fn terminating_an_inactive_contract_is_refused() {
    given::<Contract>([drafted()])
        .when(&terminate())
        .then_err("contract.wrong_status");
    given::<Contract>(with(active(), [terminated()]))
        .when(&terminate())
        .then_err("contract.wrong_status");
    given::<Contract>(with(active(), [expired("2026-02-28T00:00:02Z")]))
        .when(&terminate())
        .then_err("contract.wrong_status");
}

#[test]
fn expiring_on_the_end_date() {
    let state = given::<Contract>(active())
        .when(&expire("2026-02-28T00:00:02Z"))
        .then([expired("2026-02-28T00:00:02Z")]);
    assert_eq!(state.status(), Some(ContractStatus::Expired));
}

#[test]
fn expiring_before_the_end_date_is_refused() {
    given::<Contract>(active())
        .when(&expire("2026-02-27T23:59:59Z"))
        .then_err("contract.not_yet_ended");
    // A renewal moves the end.
    given::<Contract>(with(active(), [renewed("2027-02-28")]))
        .when(&expire("2026-02-28T00:00:02Z"))
        .then_err("contract.not_yet_ended");
}

#[test]
fn expiring_an_inactive_contract_is_refused() {
    given::<Contract>([drafted(), submitted(1), approved(), signed()])
        .when(&expire("2026-03-01T00:00:00Z"))
        .then_err("contract.wrong_status");
    given::<Contract>(with(active(), [terminated()]))
        .when(&expire("2026-03-01T00:00:00Z"))
        .then_err("contract.wrong_status");
}

fn notice_renewal() -> ContractCommand {
    ContractCommand::NoticeRenewal {
        at: at("2026-01-29T00:00:01Z"),
    }
}

fn renewal_due(end_date: &str) -> ContractEvent {
    ContractEvent::RenewalDue(ContractRenewalDue {
        end_date: date(end_date),
        owner: owner(),
        at: at("2026-01-29T00:00:01Z"),
    })
}

#[test]
fn a_renewal_notice_names_the_end_date_and_the_owner() {
    let state = given::<Contract>(active())
        .when(&notice_renewal())
        .then([renewal_due("2026-02-28")]);
    assert_eq!(state.status(), Some(ContractStatus::Active));
}

#[test]
fn a_renewal_notice_is_given_once_per_end_date() {
    given::<Contract>(with(active(), [renewal_due("2026-02-28")]))
        .when(&notice_renewal())
        .then([]);
    // A renewal moves the end: the next notice is for the new end date.
    given::<Contract>(with(
        active(),
        [renewal_due("2026-02-28"), renewed("2027-02-28")],
    ))
    .when(&notice_renewal())
    .then([renewal_due("2027-02-28")]);
}

#[test]
fn a_renewal_notice_for_an_inactive_contract_is_refused() {
    given::<Contract>([drafted()])
        .when(&notice_renewal())
        .then_err("contract.wrong_status");
    given::<Contract>(with(active(), [terminated()]))
        .when(&notice_renewal())
        .then_err("contract.wrong_status");
}

// ---------------------------------------------------------------------------
// Sharing
// ---------------------------------------------------------------------------

#[test]
fn sharing_with_a_user_and_a_role() {
    let state = given::<Contract>([drafted()])
        .when(&share(colleague()))
        .then([shared(colleague())]);
    assert!(state.details().unwrap().shared_with.contains(&colleague()));
    let state = given::<Contract>([drafted(), shared(colleague())])
        .when(&share(legal()))
        .then([shared(legal())]);
    assert_eq!(state.details().unwrap().shared_with.len(), 2);
}

#[test]
fn sharing_works_in_any_status() {
    given::<Contract>(with(active(), [expired("2026-02-28T00:00:02Z")]))
        .when(&share(legal()))
        .then([shared(legal())]);
}

#[test]
fn sharing_twice_is_refused() {
    given::<Contract>([drafted(), shared(legal())])
        .when(&share(legal()))
        .then_err("contract.already_shared");
}

#[test]
fn sharing_a_missing_contract_is_refused() {
    given::<Contract>([])
        .when(&share(legal()))
        .then_err("contract.not_found");
}

#[test]
fn unsharing_a_grantee() {
    let state = given::<Contract>([drafted(), shared(colleague()), shared(legal())])
        .when(&unshare(colleague()))
        .then([unshared(colleague())]);
    let shared_with = &state.details().unwrap().shared_with;
    assert!(!shared_with.contains(&colleague()));
    assert!(shared_with.contains(&legal()));
}

#[test]
fn unsharing_a_grantee_not_shared_with_is_refused() {
    given::<Contract>([drafted(), shared(legal())])
        .when(&unshare(colleague()))
        .then_err("contract.not_shared");
    given::<Contract>([drafted(), shared(legal()), unshared(legal())])
        .when(&unshare(legal()))
        .then_err("contract.not_shared");
    given::<Contract>([])
        .when(&unshare(legal()))
        .then_err("contract.not_found");
}

// ---------------------------------------------------------------------------
// Events, catalogue and schema history
// ---------------------------------------------------------------------------

#[test]
fn every_catalogue_example_decodes() {
    for spec in event_specs() {
        assert_eq!(spec.stream_type, STREAM_TYPE);
        let event = decode::<ContractEvent>(spec.event_type, spec.version, spec.example.clone())
            .unwrap_or_else(|e| panic!("{} v{}: {e}", spec.event_type, spec.version));
        assert_eq!(event.event_type(), spec.event_type);
    }
}

#[test]
fn the_catalogue_has_every_version_up_to_the_current_one() {
    let specs = event_specs();
    let event_types: BTreeSet<&str> = specs.iter().map(|s| s.event_type).collect();
    assert_eq!(event_types.len(), 13);
    for event_type in event_types {
        let mut versions: Vec<u16> = specs
            .iter()
            .filter(|s| s.event_type == event_type)
            .map(|s| s.version)
            .collect();
        versions.sort_unstable();
        let expected: Vec<u16> = (1..=ContractEvent::current_version(event_type)).collect();
        assert_eq!(versions, expected, "{event_type}");
    }
}

#[test]
fn the_v1_drafted_example_upcasts_to_the_v2_example() {
    let specs = event_specs();
    let example = |version: u16| {
        specs
            .iter()
            .find(|s| s.event_type == "contract.drafted" && s.version == version)
            .map(|s| s.example.clone())
            .unwrap()
    };
    let from_v1: ContractEvent = decode("contract.drafted", 1, example(1)).unwrap();
    let from_v2: ContractEvent = decode("contract.drafted", 2, example(2)).unwrap();
    assert_eq!(from_v1, from_v2);
    assert_eq!(encode(&from_v1).data, example(2));
    assert_eq!(encode(&from_v1).schema_version, 2);
}

#[test]
fn the_v1_schema_describes_the_old_shape() {
    let specs = event_specs();
    let schema = |version: u16| {
        let spec = specs
            .iter()
            .find(|s| s.event_type == "contract.drafted" && s.version == version)
            .unwrap();
        serde_json::to_value(&spec.schema).unwrap()
    };
    let v1 = schema(1);
    assert_eq!(v1["properties"]["value"]["type"], "string");
    assert_eq!(v1["properties"]["value"]["pattern"], r"^[0-9]+(\.[0-9]+)?$");
    assert_eq!(v1["properties"]["currency"]["type"], "string");
    assert_eq!(v1["properties"]["currency"]["pattern"], "^[A-Z]{3}$");
    let v2 = schema(2);
    assert!(v2["properties"].get("currency").is_none());
    assert_eq!(v2["properties"]["value"]["$ref"], "#/definitions/Money");
}

#[test]
fn event_types_match_the_serde_tags() {
    for spec in event_specs() {
        let event: ContractEvent = decode(spec.event_type, spec.version, spec.example).unwrap();
        let tagged = serde_json::to_value(&event).unwrap();
        assert_eq!(tagged["type"], event.event_type());
        let encoded = encode(&event);
        assert_eq!(encoded.event_type, spec.event_type);
        assert_eq!(
            encoded.schema_version,
            ContractEvent::current_version(spec.event_type)
        );
    }
}

#[test]
fn personal_fields_point_at_personal_data() {
    for spec in event_specs() {
        let event: ContractEvent = decode(spec.event_type, spec.version, spec.example).unwrap();
        let data = encode(&event).data;
        for pointer in event.personal_fields() {
            assert!(
                data.pointer(pointer).is_some_and(|v| !v.is_null()),
                "{}: {pointer} is missing",
                spec.event_type
            );
        }
    }
    let drafted = encode(&drafted()).data;
    let fields = drafted_personal_values(&drafted);
    assert!(fields.contains(&"Sofia Marquez".to_owned()));
    assert!(fields.contains(&"Jonas Weber".to_owned()));
    assert!(fields.contains(&"jonas.weber@northwind.example".to_owned()));
    assert_eq!(
        signed().personal_fields(),
        &["/signatory_name"],
        "the signatory's name is personal"
    );
}

/// Every string under the personal pointers of a drafted event.
fn drafted_personal_values(data: &Value) -> Vec<String> {
    fn strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for pointer in drafted().personal_fields() {
        if let Some(value) = data.pointer(pointer) {
            strings(value, &mut out);
        }
    }
    out
}

#[test]
fn error_codes_are_stable() {
    let cases = [
        (ContractError::NotFound, "contract.not_found"),
        (ContractError::AlreadyExists, "contract.already_exists"),
        (
            ContractError::WrongStatus {
                action: "sign",
                status: ContractStatus::Draft,
            },
            "contract.wrong_status",
        ),
        (
            ContractError::InvalidTerm {
                end_date: date("2025-01-01"),
                after: date("2025-01-01"),
            },
            "contract.invalid_term",
        ),
        (ContractError::NoParties, "contract.no_parties"),
        (ContractError::NothingToAmend, "contract.nothing_to_amend"),
        (ContractError::VersionLimit, "contract.version_limit"),
        (
            ContractError::ApprovalMismatch { got: approval() },
            "contract.approval_mismatch",
        ),
        (
            ContractError::NotYetStarted {
                start_date: date("2025-01-01"),
            },
            "contract.not_yet_started",
        ),
        (
            ContractError::NotYetEnded {
                end_date: date("2025-01-01"),
            },
            "contract.not_yet_ended",
        ),
        (
            ContractError::AlreadyShared(legal()),
            "contract.already_shared",
        ),
        (ContractError::NotShared(legal()), "contract.not_shared"),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code);
        let message = error.to_string();
        assert!(!message.ends_with('.'), "{message}");
        assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
    }
    assert_eq!(
        ContractError::WrongStatus {
            action: "sign",
            status: ContractStatus::PendingApproval,
        }
        .to_string(),
        "cannot sign a contract that is pending_approval"
    );
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

const BASE_DATE: &str = "2025-01-01";

fn day(offset: u64) -> NaiveDate {
    date(BASE_DATE).checked_add_days(Days::new(offset)).unwrap()
}

fn any_date() -> impl Strategy<Value = NaiveDate> {
    (0u64..120).prop_map(day)
}

fn any_at() -> impl Strategy<Value = DateTime<Utc>> {
    (0u64..150, 0u32..86_400).prop_map(|(d, secs)| {
        day(d).and_hms_opt(0, 0, 0).unwrap().and_utc() + chrono::Duration::seconds(secs.into())
    })
}

fn any_uuid() -> impl Strategy<Value = Uuid> {
    (1u128..4).prop_map(Uuid::from_u128)
}

fn any_approval() -> impl Strategy<Value = Uuid> {
    (100u128..103).prop_map(Uuid::from_u128)
}

fn any_grantee() -> impl Strategy<Value = Grantee> {
    prop_oneof![
        (1u128..4).prop_map(|n| Grantee::User(Uuid::from_u128(n))),
        prop::sample::select(vec!["legal", "sales", ""]).prop_map(|r| Grantee::Role(r.to_owned())),
    ]
}

fn any_short() -> impl Strategy<Value = ShortText> {
    prop::sample::select(vec!["Jonas Weber", "Acme Ltd", "supplier", "x"]).prop_map(short)
}

fn any_long() -> impl Strategy<Value = LongText> {
    prop::sample::select(vec!["Clause 1.", "Too expensive", "Body v2"]).prop_map(long)
}

fn any_money() -> impl Strategy<Value = Money> {
    prop_oneof![Just(0i64), Just(i64::MAX), 0i64..10_000_000].prop_map(eur)
}

fn any_terms() -> impl Strategy<Value = Terms> {
    (any_money(), any_date(), any_date()).prop_map(|(value, start_date, end_date)| Terms {
        value,
        start_date,
        end_date,
    })
}

fn any_party() -> impl Strategy<Value = Party> {
    (any_short(), any_short(), any::<bool>()).prop_map(|(name, role, person)| Party {
        name,
        role,
        kind: if person {
            PartyKind::Person
        } else {
            PartyKind::Organisation
        },
    })
}

fn any_command() -> impl Strategy<Value = ContractCommand> {
    prop_oneof![
        (
            prop::collection::vec(any_party(), 0..3),
            any_terms(),
            any_uuid(),
            any_at()
        )
            .prop_map(|(parties, terms, owner, at)| {
                ContractCommand::Draft(DraftContract {
                    parties,
                    value: terms.value,
                    start_date: terms.start_date,
                    end_date: terms.end_date,
                    owner,
                    at,
                    ..draft_command()
                })
            }),
        (
            prop::option::of(any_terms()),
            prop::option::of(any_long()),
            any_uuid(),
            any_at()
        )
            .prop_map(|(terms, body, actor, at)| ContractCommand::Amend {
                terms,
                body,
                actor,
                at
            }),
        (any_approval(), any_uuid(), any_at()).prop_map(|(approval_id, actor, at)| {
            ContractCommand::SubmitForApproval {
                approval_id,
                actor,
                at,
            }
        }),
        (any_approval(), any_at())
            .prop_map(|(approval_id, at)| ContractCommand::Approve { approval_id, at }),
        (any_approval(), any_long(), any_at()).prop_map(|(approval_id, reason, at)| {
            ContractCommand::Reject {
                approval_id,
                reason,
                at,
            }
        }),
        (any_short(), any_uuid(), any_at()).prop_map(|(signatory_name, actor, at)| {
            ContractCommand::Sign {
                signatory_name,
                actor,
                at,
            }
        }),
        any_at().prop_map(|at| ContractCommand::Activate { at }),
        (any_date(), any_uuid(), any_at()).prop_map(|(new_end_date, actor, at)| {
            ContractCommand::Renew {
                new_end_date,
                actor,
                at,
            }
        }),
        (any_long(), any_uuid(), any_at())
            .prop_map(|(reason, actor, at)| ContractCommand::Terminate { reason, actor, at }),
        any_at().prop_map(|at| ContractCommand::Expire { at }),
        any_at().prop_map(|at| ContractCommand::NoticeRenewal { at }),
        (any_grantee(), any_uuid(), any_at())
            .prop_map(|(grantee, actor, at)| ContractCommand::Share { grantee, actor, at }),
        (any_grantee(), any_uuid(), any_at())
            .prop_map(|(grantee, actor, at)| ContractCommand::Unshare { grantee, actor, at }),
    ]
}

/// Any event at all, including sequences `decide` would never produce.
fn any_event() -> impl Strategy<Value = ContractEvent> {
    prop_oneof![
        any_command().prop_filter_map("a draft", |c| match c {
            ContractCommand::Draft(d) => Some(ContractEvent::Drafted(ContractDrafted {
                title: d.title,
                parties: d.parties,
                counterparty: d.counterparty,
                value: d.value,
                start_date: d.start_date,
                end_date: d.end_date,
                body: d.body,
                owner: d.owner,
                at: d.at,
            })),
            _ => None,
        }),
        (
            prop_oneof![Just(u32::MAX), Just(0u32), 1u32..5],
            prop::option::of(any_terms()),
            prop::option::of(any_long()),
            any_at()
        )
            .prop_map(|(version, terms, body, at)| {
                ContractEvent::Amended(ContractAmended {
                    version,
                    terms,
                    body,
                    by: owner(),
                    at,
                })
            }),
        (any_approval(), any_at()).prop_map(|(approval_id, at)| {
            ContractEvent::SubmittedForApproval(ContractSubmittedForApproval {
                approval_id,
                version: 1,
                by: owner(),
                at,
            })
        }),
        (any_approval(), any_at()).prop_map(|(approval_id, at)| ContractEvent::Approved(
            ContractApproved { approval_id, at }
        )),
        (any_approval(), any_long(), any_at()).prop_map(|(approval_id, reason, at)| {
            ContractEvent::Rejected(ContractRejected {
                approval_id,
                reason,
                at,
            })
        }),
        any_at().prop_map(|at| ContractEvent::Signed(ContractSigned {
            signatory_name: short("Jonas Weber"),
            by: owner(),
            at
        })),
        any_at().prop_map(|at| ContractEvent::Activated(ContractActivated { at })),
        (any_date(), any_at()).prop_map(|(new_end_date, at)| {
            ContractEvent::Renewed(ContractRenewed {
                new_end_date,
                by: owner(),
                at,
            })
        }),
        any_at().prop_map(|at| ContractEvent::Terminated(ContractTerminated {
            reason: long("Closed."),
            by: owner(),
            at
        })),
        any_at().prop_map(|at| ContractEvent::Expired(ContractExpired { at })),
        any_grantee().prop_map(|grantee| ContractEvent::Shared(ContractShared {
            grantee,
            by: owner(),
            at: at("2025-01-01T00:00:00Z")
        })),
        any_grantee().prop_map(|grantee| ContractEvent::Unshared(ContractUnshared {
            grantee,
            by: owner(),
            at: at("2025-01-01T00:00:00Z")
        })),
    ]
}

/// The status changes a single event may make.
fn allowed_transition(before: Option<ContractStatus>, after: Option<ContractStatus>) -> bool {
    use ContractStatus as S;
    before == after
        || matches!(
            (before, after),
            (None, Some(S::Draft))
                | (Some(S::Draft | S::Rejected), Some(S::PendingApproval))
                | (Some(S::Rejected), Some(S::Draft))
                | (Some(S::PendingApproval), Some(S::Approved | S::Rejected))
                | (Some(S::Approved), Some(S::Signed))
                | (Some(S::Signed), Some(S::Active))
                | (Some(S::Active), Some(S::Terminated | S::Expired))
        )
}

fn check_invariants(state: &Contract) -> Result<(), TestCaseError> {
    use ContractStatus as S;
    let Some(d) = state.details() else {
        return Ok(());
    };
    prop_assert!(d.terms.end_date > d.terms.start_date, "term: {:?}", d.terms);
    prop_assert!(d.version >= 1);
    prop_assert!(!d.parties.is_empty());
    prop_assert_eq!(d.pending_approval.is_some(), d.status == S::PendingApproval);
    prop_assert_eq!(d.rejection_reason.is_some(), d.status == S::Rejected);
    let signed = matches!(d.status, S::Signed | S::Active | S::Terminated | S::Expired);
    prop_assert_eq!(d.signatory_name.is_some(), signed);
    prop_assert_eq!(d.signed_at.is_some(), signed);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random command sequences keep every invariant, change status only
    /// along the lifecycle, and the events they produce fold back into the
    /// same state and survive encoding.
    #[test]
    fn random_commands_keep_the_invariants(
        commands in prop::collection::vec(any_command(), 1..40),
    ) {
        let mut state = Contract::default();
        let mut history: Vec<ContractEvent> = Vec::new();
        // Start most runs with a valid draft so later commands get a chance.
        let commands = std::iter::once(draft()).chain(commands);
        for command in commands {
            let before = state.clone();
            match before.decide(&command) {
                Ok(events) => {
                    // One event, or none for a renewal notice already given.
                    let repeat_notice = matches!(command, ContractCommand::NoticeRenewal { .. });
                    prop_assert!(events.len() == 1 || (events.is_empty() && repeat_notice));
                    for event in events {
                        let encoded = encode(&event);
                        let back: ContractEvent =
                            decode(encoded.event_type, encoded.schema_version, encoded.data)
                                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(&back, &event);
                        if let (ContractEvent::Expired(e), Some(d)) = (&event, before.details()) {
                            prop_assert!(e.at.date_naive() >= d.terms.end_date);
                        }
                        if let (ContractEvent::Activated(e), Some(d)) = (&event, before.details()) {
                            prop_assert!(e.at.date_naive() >= d.terms.start_date);
                        }
                        state = state.evolve(&event);
                        // Fold later from what the store would hand back.
                        history.push(back);
                    }
                    prop_assert!(
                        allowed_transition(before.status(), state.status()),
                        "{:?} -> {:?} by {:?}", before.status(), state.status(), command
                    );
                }
                Err(error) => {
                    prop_assert!(error.code().starts_with("contract."));
                }
            }
            check_invariants(&state)?;
        }
        prop_assert_eq!(Contract::fold(history.iter()), state);
    }

    /// `decide` answers every command in every state, even states folded
    /// from event sequences it would never have produced.
    #[test]
    fn decide_never_panics(
        events in prop::collection::vec(any_event(), 0..12),
        command in any_command(),
    ) {
        let state = Contract::fold(events.iter());
        let _ = state.decide(&command);
    }
}
