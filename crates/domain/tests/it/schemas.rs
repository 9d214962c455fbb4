//! The `event-schemas/` directory at the workspace root, generated from
//! [`catalog::all`] and checked against it.
//!
//! - With `CHRONICLE_BLESS=1`, every schema is (re)written and every example
//!   that does not exist yet is written. Existing examples are never
//!   overwritten: they are the golden record of what was stored.
//! - Without it, a missing, stale or unknown file fails (drift), and every
//!   committed example must decode with today's code, upcasting older
//!   versions (backward compatibility).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;

use chronicle_domain::catalog::{self, EventSpec};
use chronicle_domain::event::{decode, DomainEvent};
use serde_json::Value;

const BLESS_VAR: &str = "CHRONICLE_BLESS";
const REGENERATE: &str =
    "regenerate with `CHRONICLE_BLESS=1 cargo test -p chronicle-domain --test it schemas` \
     and commit event-schemas/ (see event-schemas/README.md)";

/// Decodes stored data with the event enum of `stream_type`'s aggregate.
/// One arm per stream type: a stream type without an arm fails.
fn decode_any(
    stream_type: &str,
    event_type: &str,
    version: u16,
    data: Value,
) -> Result<(), String> {
    use chronicle_domain::{
        approval, contract, knowledge, lead, notification, policy, privacy, ticket, user,
    };

    /// Decodes, then checks that the event still decodes with its
    /// personal fields erased (each replaced by its placeholder).
    fn check<E: DomainEvent>(event_type: &str, version: u16, data: Value) -> Result<(), String> {
        let event = decode::<E>(event_type, version, data).map_err(|e| e.to_string())?;
        if event.event_type() != event_type {
            return Err(format!("decoded as {}", event.event_type()));
        }
        let mut erased = chronicle_domain::event::encode(&event).data;
        for pointer in event.personal_pointers() {
            match erased.pointer_mut(&pointer) {
                Some(Value::Null) => {}
                Some(v) => *v = chronicle_domain::event::erased_placeholder(&pointer),
                None => return Err(format!("the personal field {pointer} is not in the data")),
            }
        }
        decode::<E>(event_type, E::current_version(event_type), erased)
            .map(|_| ())
            .map_err(|e| format!("with its personal fields erased it no longer decodes: {e}"))
    }

    match stream_type {
        "approval" => check::<approval::ApprovalEvent>(event_type, version, data),
        "contract" => check::<contract::ContractEvent>(event_type, version, data),
        "knowledge_article" => check::<knowledge::KnowledgeEvent>(event_type, version, data),
        "lead" => check::<lead::LeadEvent>(event_type, version, data),
        "notification_preferences" => {
            check::<notification::NotificationEvent>(event_type, version, data)
        }
        "tenant_policy" => check::<policy::PolicyEvent>(event_type, version, data),
        "data_subject" => check::<privacy::DataSubjectEvent>(event_type, version, data),
        "access_log" => check::<privacy::AccessLogEvent>(event_type, version, data),
        "ticket" => check::<ticket::TicketEvent>(event_type, version, data),
        "user" => check::<user::UserEvent>(event_type, version, data),
        other => Err(format!(
            "no decoder for stream type {other:?}: add an arm to decode_any in crates/domain/tests/it/schemas.rs"
        )),
    }
}

fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn schemas_dir() -> PathBuf {
    workspace_root().join("event-schemas")
}

/// A path as it reads best in a failure: relative to the workspace root.
fn shown(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn schema_path(dir: &Path, event_type: &str, version: u16) -> PathBuf {
    dir.join(event_type).join(format!("v{version}.schema.json"))
}

fn example_path(dir: &Path, event_type: &str, version: u16) -> PathBuf {
    dir.join(event_type)
        .join(format!("v{version}.example.json"))
}

/// The same JSON with every object's keys sorted, whatever map type
/// serde_json was built with.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

fn schema_json(spec: &EventSpec) -> Value {
    canonical(serde_json::to_value(&spec.schema).expect("a schema serialises"))
}

/// Pretty JSON with a trailing newline.
fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON serialises");
    text.push('\n');
    text
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", shown(path)))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: invalid JSON: {e}", shown(path)))
}

/// Writes the files once per test run when `CHRONICLE_BLESS=1`.
fn bless_if_asked() {
    static BLESS: Once = Once::new();
    BLESS.call_once(|| {
        if std::env::var(BLESS_VAR).as_deref() != Ok("1") {
            return;
        }
        let dir = schemas_dir();
        for spec in catalog::all() {
            let schema = schema_path(&dir, spec.event_type, spec.version);
            fs::create_dir_all(schema.parent().expect("a file has a parent"))
                .expect("create the event type's directory");
            fs::write(&schema, pretty(&schema_json(&spec))).expect("write the schema");
            let example = example_path(&dir, spec.event_type, spec.version);
            if !example.exists() {
                fs::write(&example, pretty(&canonical(spec.example.clone())))
                    .expect("write the example");
                eprintln!("wrote golden example {}", shown(&example));
            }
        }
    });
}

/// Whether a file in `event-schemas/<event_type>/` is a schema or an
/// example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FileKind {
    Schema,
    Example,
}

/// The version and kind of `v<version>.schema.json` or
/// `v<version>.example.json`.
fn parse_file_name(name: &str) -> Option<(u16, FileKind)> {
    let (stem, kind) = if let Some(stem) = name.strip_suffix(".schema.json") {
        (stem, FileKind::Schema)
    } else {
        (name.strip_suffix(".example.json")?, FileKind::Example)
    };
    let digits = stem.strip_prefix('v')?;
    if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, kind))
}

/// One file under `event-schemas/<event_type>/`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct CommittedFile {
    event_type: String,
    version: u16,
    kind: FileKind,
    path: PathBuf,
}

/// Every schema and example file under `dir`, and the paths that do not
/// belong there.
fn committed_files(dir: &Path) -> (Vec<CommittedFile>, Vec<String>) {
    let mut files = Vec::new();
    let mut strays = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return (files, strays);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !path.is_dir() {
            if name != "README.md" {
                strays.push(format!("{}: unexpected file", shown(&path)));
            }
            continue;
        }
        let Ok(inner) = fs::read_dir(&path) else {
            strays.push(format!("{}: unreadable directory", shown(&path)));
            continue;
        };
        for file in inner.flatten() {
            let file_name = file.file_name().to_string_lossy().into_owned();
            match parse_file_name(&file_name) {
                Some((version, kind)) if file.path().is_file() => {
                    files.push(CommittedFile {
                        event_type: name.clone(),
                        version,
                        kind,
                        path: file.path(),
                    });
                }
                _ => strays.push(format!(
                    "{}: expected v<version>.schema.json or v<version>.example.json",
                    shown(&file.path())
                )),
            }
        }
    }
    files.sort();
    (files, strays)
}

#[test]
fn catalogue_entries_are_unique_and_decode() {
    let specs = catalog::all();
    assert!(!specs.is_empty(), "the catalogue is empty");
    let mut seen = BTreeSet::new();
    let mut stream_of: BTreeMap<&str, &str> = BTreeMap::new();
    let mut problems = Vec::new();
    for spec in &specs {
        if !seen.insert((spec.event_type, spec.version)) {
            problems.push(format!("{} v{} twice", spec.event_type, spec.version));
        }
        if let Some(other) = stream_of.insert(spec.event_type, spec.stream_type) {
            if other != spec.stream_type {
                problems.push(format!(
                    "{} in stream types {other} and {}",
                    spec.event_type, spec.stream_type
                ));
            }
        }
        if spec.version == 0 {
            problems.push(format!("{} v0: versions start at 1", spec.event_type));
        }
        if let Err(e) = decode_any(
            spec.stream_type,
            spec.event_type,
            spec.version,
            spec.example.clone(),
        ) {
            problems.push(format!(
                "{} v{} example: {e}",
                spec.event_type, spec.version
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "catalogue problems:\n{}",
        problems.join("\n")
    );
}

/// What in `dir` disagrees with `specs`: missing or stale schemas, missing
/// examples, files for versions the catalogue does not know, stray files.
fn drift(dir: &Path, specs: &[EventSpec]) -> Vec<String> {
    let mut problems = Vec::new();
    for spec in specs {
        let schema = schema_path(dir, spec.event_type, spec.version);
        match read_json(&schema) {
            Ok(committed) if canonical(committed.clone()) == schema_json(spec) => {}
            Ok(_) => problems.push(format!(
                "{}: differs from the schema of {} v{}",
                shown(&schema),
                spec.event_type,
                spec.version
            )),
            Err(e) => problems.push(format!("missing or unreadable schema: {e}")),
        }
        let example = example_path(dir, spec.event_type, spec.version);
        if !example.is_file() {
            problems.push(format!("{}: missing golden example", shown(&example)));
        }
    }

    let known: BTreeSet<(&str, u16)> = specs.iter().map(|s| (s.event_type, s.version)).collect();
    let (files, strays) = committed_files(dir);
    problems.extend(strays);
    for CommittedFile {
        event_type,
        version,
        path,
        ..
    } in &files
    {
        if !known.contains(&(event_type.as_str(), *version)) {
            problems.push(format!(
                "{}: {event_type} v{version} is not in the catalogue (the catalogue keeps every version ever written)",
                shown(path)
            ));
        }
    }
    problems
}

/// The examples in `dir` that today's code cannot decode, and how many it
/// decoded.
fn incompatible(dir: &Path, specs: &[EventSpec]) -> (Vec<String>, usize) {
    let stream_of: BTreeMap<&str, &str> = specs
        .iter()
        .map(|s| (s.event_type, s.stream_type))
        .collect();
    let (files, _) = committed_files(dir);
    let mut problems = Vec::new();
    let mut decoded = 0usize;
    for CommittedFile {
        event_type,
        version,
        kind,
        path,
    } in &files
    {
        if *kind != FileKind::Example {
            continue;
        }
        let Some(stream_type) = stream_of.get(event_type.as_str()) else {
            problems.push(format!(
                "{}: event type {event_type} is not in the catalogue",
                shown(path)
            ));
            continue;
        };
        let result =
            read_json(path).and_then(|data| decode_any(stream_type, event_type, *version, data));
        match result {
            Ok(()) => decoded += 1,
            Err(e) => problems.push(format!("{}: {e}", shown(path))),
        }
    }
    (problems, decoded)
}

/// Drift test: the committed schemas are exactly the catalogue's.
#[test]
fn event_schemas_match_the_catalogue() {
    bless_if_asked();
    let problems = drift(&schemas_dir(), &catalog::all());
    assert!(
        problems.is_empty(),
        "event-schemas/ has drifted from the catalogue:\n{}\n\n{REGENERATE}",
        problems.join("\n")
    );
}

/// Compatibility test: every golden example still decodes.
#[test]
fn golden_examples_decode_with_todays_code() {
    bless_if_asked();
    let (problems, decoded) = incompatible(&schemas_dir(), &catalog::all());
    assert!(
        problems.is_empty(),
        "golden examples that today's code cannot read:\n{}\n\n\
         Fix the code or its upcaster, not the example. Only the example of a version that was \
         never released may be deleted and regenerated (see event-schemas/README.md).",
        problems.join("\n")
    );
    assert!(
        decoded > 0,
        "no golden example under {}: {REGENERATE}",
        shown(&schemas_dir())
    );
}

/// A scratch directory for the checks' own tests, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "chronicle-event-schemas-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create a scratch directory");
        Self(dir)
    }

    fn write(&self, event_type: &str, file: &str, value: &Value) {
        let path = self.0.join(event_type).join(file);
        fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir");
        fs::write(path, pretty(value)).expect("write");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The contract specs, a stable subset of the catalogue for the checks'
/// own tests.
fn contract_specs() -> Vec<EventSpec> {
    chronicle_domain::contract::event_specs()
}

fn blessed(name: &str, specs: &[EventSpec]) -> Scratch {
    let scratch = Scratch::new(name);
    for spec in specs {
        let version = spec.version;
        scratch.write(
            spec.event_type,
            &format!("v{version}.schema.json"),
            &schema_json(spec),
        );
        scratch.write(
            spec.event_type,
            &format!("v{version}.example.json"),
            &spec.example,
        );
    }
    scratch
}

#[test]
fn a_blessed_directory_has_no_drift_and_decodes() {
    let specs = contract_specs();
    let scratch = blessed("clean", &specs);
    assert_eq!(drift(&scratch.0, &specs), Vec::<String>::new());
    assert_eq!(incompatible(&scratch.0, &specs), (vec![], specs.len()));
}

#[test]
fn drift_catches_stale_missing_unknown_and_stray_files() {
    let specs = contract_specs();
    let scratch = blessed("drift", &specs);
    scratch.write(
        "contract.signed",
        "v1.schema.json",
        &serde_json::json!({"type": "object"}),
    );
    fs::remove_file(scratch.0.join("contract.expired/v1.schema.json")).expect("rm");
    fs::remove_file(scratch.0.join("contract.shared/v1.example.json")).expect("rm");
    scratch.write("contract.signed", "v2.schema.json", &serde_json::json!({}));
    scratch.write(
        "contract.vanished",
        "v1.schema.json",
        &serde_json::json!({}),
    );
    scratch.write("contract.signed", "notes.txt", &serde_json::json!({}));
    let problems = drift(&scratch.0, &specs).join("\n");
    for expected in [
        "contract.signed/v1.schema.json: differs",
        "contract.expired/v1.schema.json: No such file",
        "contract.shared/v1.example.json: missing golden example",
        "contract.signed/v2.schema.json: contract.signed v2 is not in the catalogue",
        "contract.vanished/v1.schema.json: contract.vanished v1 is not in the catalogue",
        "contract.signed/notes.txt: expected v<version>",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} not in:\n{problems}"
        );
    }
}

#[test]
fn compatibility_catches_undecodable_examples() {
    let specs = contract_specs();
    let scratch = blessed("compat", &specs);
    let mut broken = specs
        .iter()
        .find(|s| s.event_type == "contract.drafted" && s.version == 1)
        .map(|s| s.example.clone())
        .expect("contract.drafted v1 is in the catalogue");
    broken["value"] = Value::String("12,500.50".to_owned());
    scratch.write("contract.drafted", "v1.example.json", &broken);
    scratch.write(
        "contract.vanished",
        "v1.example.json",
        &serde_json::json!({}),
    );
    let (problems, decoded) = incompatible(&scratch.0, &specs);
    let problems = problems.join("\n");
    assert_eq!(decoded, specs.len() - 1);
    assert!(
        problems.contains("contract.drafted/v1.example.json: event type contract.drafted"),
        "{problems}"
    );
    assert!(problems.contains("contract.vanished/v1.example.json: event type contract.vanished is not in the catalogue"), "{problems}");
}

#[test]
fn unknown_stream_types_fail() {
    let error = decode_any("spaceship", "spaceship.launched", 1, serde_json::json!({}))
        .expect_err("an unknown stream type must not decode");
    assert!(
        error.contains("no decoder for stream type \"spaceship\""),
        "{error}"
    );
}

#[test]
fn file_names_parse() {
    assert_eq!(
        parse_file_name("v1.schema.json"),
        Some((1, FileKind::Schema))
    );
    assert_eq!(
        parse_file_name("v12.example.json"),
        Some((12, FileKind::Example))
    );
    for bad in [
        "v0.schema.json",
        "v01.schema.json",
        "1.schema.json",
        "v1.json",
        "v.example.json",
        "v1a.schema.json",
    ] {
        assert_eq!(parse_file_name(bad), None, "{bad}");
    }
}
