//! Query syntax, errors that say where, fields a user may not name, and
//! scores that do not depend on documents the caller cannot see.

use std::sync::Arc;

use chronicle_search::index::{Indexer, Layout, Reader, Snapshot, WriterOptions};
use chronicle_search::query::{
    self, ContractAccess, Request, Scope, SearchError, StatsCache, TicketAccess,
};
use chronicle_store::EventStore as _;
use chronicle_testkit::TestDb;
use uuid::Uuid;

use crate::support::{admin, append, caught_up, ev, search, store, titles};

async fn index(db: &TestDb, dir: &std::path::Path) -> Snapshot {
    let events = store(db);
    let owner = Uuid::now_v7();
    for (title, body) in [
        (
            "Managed fibre for Globex",
            "The supplier provides managed fibre to three sites in Berlin.",
        ),
        (
            "Dark fibre lease",
            "A lease of dark fibre between two data centres.",
        ),
        (
            "Copper maintenance",
            "Maintenance of copper lines, response within four hours.",
        ),
        (
            "Fibre and copper bundle",
            "Fibre internet with a copper backup line.",
        ),
    ] {
        append(
            &events,
            "acme",
            "contract",
            Uuid::now_v7(),
            vec![ev::drafted(title, "Globex Corp", body, owner)],
        )
        .await;
    }
    let at = append(
        &events,
        "acme",
        "knowledge_article",
        Uuid::now_v7(),
        vec![ev::published(
            "Fibre modem blinks red",
            "Check the fibre patch cable, then restart the modem.",
            &["fibre", "modem"],
        )],
    )
    .await;
    let mut indexer = Indexer::open_current(&Layout::new(dir), WriterOptions::default()).unwrap();
    indexer
        .apply(&events.read_batch(0, 1000).await.unwrap().events)
        .unwrap();
    indexer.commit().unwrap();
    caught_up(&Arc::new(Reader::new(dir)), at).await
}

fn error(snapshot: &Snapshot, q: &str) -> (String, Option<usize>) {
    let request = Request {
        q: q.to_owned(),
        limit: 10,
        ..Default::default()
    };
    match query::search(snapshot, &StatsCache::default(), &admin("acme"), &request) {
        Err(SearchError::InvalidQuery { message, at }) => (message, at),
        Err(e) => panic!("{q}: not a query error: {e}"),
        Ok(r) => panic!("{q}: accepted, {} hits", r.total),
    }
}

#[tokio::test]
async fn the_query_syntax_terms_phrases_prefixes_fields_and_booleans() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let s = index(&db, dir.path()).await;
    let all = admin("acme");
    let found = |q: &str| {
        let mut t = titles(&search(&s, &all, q));
        t.sort();
        t
    };
    assert_eq!(found("fibre").len(), 4, "terms: every document with fibre");
    assert_eq!(
        found("fibre copper"),
        ["Fibre and copper bundle"],
        "terms are ANDed by default"
    );
    assert_eq!(found("fibre OR copper").len(), 5);
    assert_eq!(found("fibre AND NOT copper").len(), 3);
    assert_eq!(found("fibre -copper").len(), 3);
    assert_eq!(found("\"dark fibre\""), ["Dark fibre lease"], "phrases");
    assert_eq!(found("\"fibre dark\""), Vec::<String>::new());
    assert_eq!(found("maint*"), ["Copper maintenance"], "prefixes");
    assert_eq!(found("Mainten*"), ["Copper maintenance"]);
    assert_eq!(found("title:cop*").len(), 2);
    assert_eq!(found("cop* AND bundl*"), ["Fibre and copper bundle"]);
    assert_eq!(
        found("\"dark fib\"*"),
        ["Dark fibre lease"],
        "phrase prefixes"
    );
    assert_eq!(found("title:copper").len(), 2, "field queries");
    assert_eq!(
        found("body:copper AND title:bundle"),
        ["Fibre and copper bundle"]
    );
    assert_eq!(found("tags:modem"), ["Fibre modem blinks red"]);
    assert_eq!(found("status:draft").len(), 4);
    assert_eq!(found("type:kb"), ["Fibre modem blinks red"]);
    assert_eq!(found("value:[10000000 TO *]").len(), 4);
    assert_eq!(found("(lease OR bundle) AND fibre").len(), 2);
    assert_eq!(found("fibre NOT copper").len(), 3);
    // Titles count more than bodies.
    let ranked = titles(&search(&s, &all, "modem"));
    assert_eq!(ranked[0], "Fibre modem blinks red");
}

#[tokio::test]
async fn a_malformed_query_says_where() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let s = index(&db, dir.path()).await;
    for (q, at) in [
        ("fibre AND (copper", Some(17)),
        ("fibre AND (copper OR", Some(20)),
        ("\"unclosed phrase", Some(16)),
        ("title:", None),
        ("value:abc", Some(0)),
        ("fibre end:soon", Some(6)),
        ("-copper", None),
        ("/fib.*/", Some(0)),
    ] {
        let (message, position) = error(&s, q);
        assert!(!message.is_empty(), "{q}");
        if let Some(at) = at {
            assert_eq!(position, Some(at), "{q}: {message}");
            assert!(
                message.contains(&format!("character {}", at + 1)),
                "{q}: {message}"
            );
        }
    }
}

#[tokio::test]
async fn fields_that_hold_access_data_cannot_be_named() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let s = index(&db, dir.path()).await;
    for field in [
        "tenant",
        "owner",
        "shared_users",
        "shared_roles",
        "customer",
        "key",
        "id",
        "source",
        "nope",
    ] {
        for q in [
            format!("{field}:acme"),
            format!("fibre AND {field}:x"),
            format!("{field}:[a TO z]"),
            format!("{field}: IN [a b]"),
            format!("fibre OR ({field}:*)"),
        ] {
            let (message, at) = error(&s, &q);
            assert!(
                message.contains(&format!("unknown field `{field}`")),
                "{q}: {message}"
            );
            assert!(at.is_some(), "{q}");
        }
    }
}

#[tokio::test]
async fn scores_do_not_depend_on_what_the_caller_cannot_see() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let events = store(&db);
    let (ann, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let anns = Scope {
        tenant: "acme".into(),
        contracts: ContractAccess::Granted {
            user: ann,
            roles: vec!["sales".into()],
        },
        tickets: TicketAccess::None,
    };
    append(
        &events,
        "acme",
        "contract",
        Uuid::now_v7(),
        vec![ev::drafted(
            "Ann's fibre deal",
            "Globex",
            "Fibre to the depot.",
            ann,
        )],
    )
    .await;
    append(
        &events,
        "acme",
        "contract",
        Uuid::now_v7(),
        vec![ev::drafted(
            "Ann's copper deal",
            "Globex",
            "Copper to the office.",
            ann,
        )],
    )
    .await;
    let layout = Layout::new(dir.path());
    let mut indexer = Indexer::open_current(&layout, WriterOptions::default()).unwrap();
    let at = events.head_position().await.unwrap();
    indexer
        .apply(&events.read_batch(0, 1000).await.unwrap().events)
        .unwrap();
    indexer.commit().unwrap();
    let reader = Arc::new(Reader::new(dir.path()));
    let before = search(&caught_up(&reader, at).await, &anns, "fibre").hits[0].score;
    // Bob's contracts and another tenant's, all about fibre: Ann sees none.
    for i in 0..20 {
        append(
            &events,
            "acme",
            "contract",
            Uuid::now_v7(),
            vec![ev::drafted(
                &format!("Bob's fibre {i}"),
                "Initech",
                "Fibre fibre fibre everywhere.",
                bob,
            )],
        )
        .await;
        append(
            &events,
            "zeta",
            "contract",
            Uuid::now_v7(),
            vec![ev::drafted(&format!("Fibre {i}"), "Initech", "Fibre.", ann)],
        )
        .await;
    }
    let at = events.head_position().await.unwrap();
    indexer
        .apply(
            &events
                .read_batch(indexer.applied(), 1000)
                .await
                .unwrap()
                .events,
        )
        .unwrap();
    indexer.commit().unwrap();
    let s = caught_up(&reader, at).await;
    let after = search(&s, &anns, "fibre");
    assert_eq!(titles(&after), ["Ann's fibre deal"]);
    assert_eq!(after.total, 1);
    assert_eq!(after.facets.kinds.get("contract"), Some(&1));
    assert_eq!(
        after.hits[0].score, before,
        "the score moved with hidden documents"
    );
    // An admin of the tenant sees Bob's too, and its scores do move.
    assert_eq!(search(&s, &admin("acme"), "fibre").total, 21);
}

/// Odd queries end in results or in a query error, never in an index error
/// (which the API would answer with a 500) or a panic.
#[tokio::test]
async fn odd_queries_are_answered_or_refused() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let s = index(&db, dir.path()).await;
    let odd = [
        "*",
        "title:*",
        "value:*",
        "end:*",
        "status:*",
        "type:*",
        "\"\"",
        "title:\"\"",
        "fibre^2",
        "title:fibre^0.5",
        "fibre~2",
        "\"dark fibre\"~2",
        "IN [a b]",
        "title: IN [fibre copper]",
        "value:>5",
        "value:>=abc",
        "start:>2026-01-01T00:00:00Z",
        "end:<=2027-01-01T00:00:00Z",
        "value:[1 TO abc]",
        "title:[a TO z]",
        "value:{1 TO 5}",
        "(",
        ")",
        "((fibre)",
        "AND",
        "OR OR",
        "NOT",
        "-",
        "+",
        "+fibre -",
        "fibre AND",
        ":",
        "title:",
        "::",
        "\\",
        "\"\\\"",
        "fibre*",
        "*fibre",
        "f*b*",
        "fibre**",
        "é*",
        "中文",
        "🦀*",
        "title:🦀",
        "a:b:c",
        "title.x:fibre",
        "[* TO *]",
        "value:[* TO *]",
        "tags:\"wi fi\"*",
        "\"a\"*",
        "\"the of\"",
        "the",
        "the*",
        "-the",
        "fibre -the",
        "value:1e10",
        "value:99999999999999999999",
        "start:2026-01-01",
        "currency:EUR",
        "priority:P2",
        "fibre OR -copper",
        "NOT NOT fibre",
        "title:(fibre OR copper)",
        "title:(fibre -copper)",
        "+(-a)",
        "$exists(title)",
    ];
    let mut failures = Vec::new();
    for q in odd {
        let request = Request {
            q: q.to_owned(),
            limit: 10,
            ..Default::default()
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            query::search(&s, &StatsCache::default(), &admin("acme"), &request)
        }));
        match outcome {
            Ok(Ok(_)) | Ok(Err(SearchError::InvalidQuery { .. })) => {}
            Ok(Err(e)) => failures.push(format!("{q:?}: {e}")),
            Err(_) => failures.push(format!("{q:?}: panicked")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
