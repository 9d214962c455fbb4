//! Given / when / then for every knowledge-article command, the catalogue,
//! and property tests.

use std::collections::BTreeSet;

use chrono::{TimeDelta, TimeZone};
use proptest::prelude::*;

use super::*;
use crate::event::{decode, encode};
use crate::testing::given;

const AUTHOR: Uuid = Uuid::from_u128(0xe001);
const EDITOR: Uuid = Uuid::from_u128(0xe002);

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 4, 11, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn short(s: &str) -> ShortText {
    ShortText::parse("text", s).unwrap()
}

fn long(s: &str) -> LongText {
    LongText::parse("text", s).unwrap()
}

fn tags(names: &[&str]) -> Tags {
    Tags::new(names.iter().map(|n| short(n)))
}

fn publish() -> KnowledgeCommand {
    KnowledgeCommand::Publish {
        actor: AUTHOR,
        title: short("Hub loses Wi-Fi"),
        body: long("Roll back the firmware."),
        tags: tags(&["wi-fi", "firmware"]),
        product: short("SmartHub 3"),
        at: t(0),
    }
}

fn published() -> KnowledgeEvent {
    KnowledgeEvent::Published(ArticlePublished {
        title: short("Hub loses Wi-Fi"),
        body: long("Roll back the firmware."),
        tags: tags(&["wi-fi", "firmware"]),
        product: short("SmartHub 3"),
        author_id: AUTHOR,
        version: 1,
        at: t(0),
    })
}

fn revise(title: &str) -> KnowledgeCommand {
    KnowledgeCommand::Revise {
        actor: EDITOR,
        title: short(title),
        body: long("Update to 2.4.1."),
        tags: tags(&["wi-fi"]),
        at: t(60),
    }
}

fn revised(title: &str, version: u32) -> KnowledgeEvent {
    KnowledgeEvent::Revised(ArticleRevised {
        title: short(title),
        body: long("Update to 2.4.1."),
        tags: tags(&["wi-fi"]),
        version,
        by: EDITOR,
        at: t(60),
    })
}

fn retire() -> KnowledgeCommand {
    KnowledgeCommand::Retire {
        actor: EDITOR,
        reason: Some(short("end of support")),
        at: t(120),
    }
}

fn retired(version: u32) -> KnowledgeEvent {
    KnowledgeEvent::Retired(ArticleRetired {
        reason: Some(short("end of support")),
        version,
        by: EDITOR,
        at: t(120),
    })
}

#[test]
fn publish_publishes_version_one() {
    let state = given::<KnowledgeArticle>([])
        .when(&publish())
        .then([published()]);
    assert_eq!(state.status, Some(ArticleStatus::Published));
    assert_eq!(state.version, 1);
}

#[test]
fn publishing_twice_is_refused() {
    given::<KnowledgeArticle>([published()])
        .when(&publish())
        .then_err("knowledge_article.already_exists");
    given::<KnowledgeArticle>([published(), retired(1)])
        .when(&publish())
        .then_err("knowledge_article.already_exists");
}

#[test]
fn revise_and_retire_a_missing_article_are_not_found() {
    given::<KnowledgeArticle>([])
        .when(&revise("x"))
        .then_err("knowledge_article.not_found");
    given::<KnowledgeArticle>([])
        .when(&retire())
        .then_err("knowledge_article.not_found");
}

#[test]
fn each_revision_increments_the_version() {
    let state = given::<KnowledgeArticle>([published()])
        .when(&revise("Fixed in 2.4.1"))
        .then([revised("Fixed in 2.4.1", 2)]);
    assert_eq!(state.version, 2);
    given::<KnowledgeArticle>([published(), revised("Fixed in 2.4.1", 2)])
        .when(&revise("Fixed in 2.4.1 and later"))
        .then([revised("Fixed in 2.4.1 and later", 3)]);
}

#[test]
fn a_revision_that_changes_nothing_is_a_no_op() {
    given::<KnowledgeArticle>([published(), revised("Same", 2)])
        .when(&revise("Same"))
        .then([]);
}

#[test]
fn revision_numbers_do_not_overflow() {
    given::<KnowledgeArticle>([published(), revised("Last", u32::MAX)])
        .when(&revise("One more"))
        .then_err("knowledge_article.too_many_revisions");
}

#[test]
fn retire_retires_the_current_version() {
    let state = given::<KnowledgeArticle>([published(), revised("v2", 2)])
        .when(&retire())
        .then([retired(2)]);
    assert_eq!(state.status, Some(ArticleStatus::Retired));
    given::<KnowledgeArticle>([published()])
        .when(&KnowledgeCommand::Retire {
            actor: EDITOR,
            reason: None,
            at: t(120),
        })
        .then([KnowledgeEvent::Retired(ArticleRetired {
            reason: None,
            version: 1,
            by: EDITOR,
            at: t(120),
        })]);
}

#[test]
fn a_retired_article_can_be_neither_revised_nor_retired() {
    given::<KnowledgeArticle>([published(), retired(1)])
        .when(&revise("x"))
        .then_err("knowledge_article.retired");
    given::<KnowledgeArticle>([published(), retired(1)])
        .when(&retire())
        .then_err("knowledge_article.retired");
}

#[test]
fn tags_are_distinct_ignoring_case_and_keep_their_order() {
    let t = tags(&["Wi-Fi", "firmware", "wi-fi", "SmartHub"]);
    let names: Vec<&str> = t.as_slice().iter().map(ShortText::as_str).collect();
    assert_eq!(names, ["Wi-Fi", "firmware", "SmartHub"]);
}

// --- events and catalogue ------------------------------------------------------------

#[test]
fn event_types_match_their_serde_names_and_round_trip() {
    for event in [published(), revised("v2", 2), retired(2)] {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], event.event_type());
        assert!(event.personal_fields().is_empty());
        let encoded = encode(&event);
        let back: KnowledgeEvent =
            decode(encoded.event_type, encoded.schema_version, encoded.data).unwrap();
        assert_eq!(back, event);
    }
}

#[test]
fn every_catalogue_example_decodes() {
    let specs = event_specs();
    assert_eq!(specs.len(), 3);
    for spec in specs {
        assert_eq!(spec.stream_type, "knowledge_article");
        let event: KnowledgeEvent = decode(spec.event_type, spec.version, spec.example.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", spec.event_type));
        assert_eq!(event.event_type(), spec.event_type);
        assert_eq!(encode(&event).data, spec.example, "{}", spec.event_type);
    }
}

#[test]
fn error_codes_are_distinct_and_dotted() {
    let errors = [
        KnowledgeError::NotFound,
        KnowledgeError::AlreadyExists,
        KnowledgeError::Retired,
        KnowledgeError::TooManyRevisions,
    ];
    let codes: BTreeSet<&str> = errors.iter().map(ErrorCode::code).collect();
    assert_eq!(codes.len(), errors.len());
    for error in &errors {
        assert!(error.code().starts_with("knowledge_article."));
        let message = error.to_string();
        assert_eq!(message, message.to_lowercase());
        assert!(!message.ends_with('.'));
    }
}

// --- properties ------------------------------------------------------------------------

fn any_command() -> impl Strategy<Value = KnowledgeCommand> {
    let title = prop::sample::select(vec!["A", "B", "C"]);
    prop_oneof![
        1 => Just(publish()),
        4 => title.prop_map(revise),
        1 => Just(retire()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn versions_count_the_revisions(commands in prop::collection::vec(any_command(), 1..30)) {
        let mut state = KnowledgeArticle::default();
        let mut history = Vec::new();
        for command in &commands {
            if let Ok(events) = state.decide(command) {
                for event in &events {
                    prop_assert!(state.status != Some(ArticleStatus::Retired));
                    state = state.clone().evolve(event);
                }
                history.extend(events);
            }
        }
        let revisions = history
            .iter()
            .filter(|e| matches!(e, KnowledgeEvent::Revised(_)))
            .count();
        if state.status.is_some() {
            prop_assert_eq!(state.version as usize, revisions + 1);
        } else {
            prop_assert_eq!(&state, &KnowledgeArticle::default());
        }
        // Versions in events are 1, 2, 3, ... in order.
        let versions: Vec<u32> = history
            .iter()
            .filter_map(|e| match e {
                KnowledgeEvent::Published(p) => Some(p.version),
                KnowledgeEvent::Revised(r) => Some(r.version),
                KnowledgeEvent::Retired(_) => None,
            })
            .collect();
        let expected: Vec<u32> = (1..=u32::try_from(versions.len()).unwrap()).collect();
        prop_assert_eq!(versions, expected);
        prop_assert_eq!(KnowledgeArticle::fold(history.iter()), state);
    }
}
