//! The fast path of conjunctions (the catch-all fields, WAND over the
//! words' per-field terms) answers exactly what the parser's query does:
//! the same hits with the same scores, the same total and facets, for
//! random conjunctions over a corpus whose words are spread over every
//! default field, in several segments with deletes, for callers who see
//! all or part of it, with type and status filters and pages.

use std::sync::Arc;

use chronicle_domain::contract::Grantee;
use chronicle_search::doc::Kind;
use chronicle_search::index::{Indexer, Layout, Reader, WriterOptions};
use chronicle_search::query::{
    self, ContractAccess, Request, Results, Scope, StatsCache, TicketAccess,
};
use chronicle_testkit::TestDb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::support::{admin, append, caught_up, commit_in_batches, ev, store};

/// In most documents: their conjunctions match thousands (WAND).
const COMMON: &[&str] = &["service", "network", "customer"];
/// In a fifth of them; `files` and `file` share a stem, `modem` and
/// `connectivity` are also tag, product or category values.
const MEDIUM: &[&str] = &[
    "fibre",
    "copper",
    "files",
    "file",
    "modem",
    "backup",
    "maintenance",
    "connectivity",
    "licence",
    "renewal",
];
/// In one in a hundred.
const RARE: &[&str] = &["xylophone", "quasar", "zeppelin", "obsidian"];

/// A text with each common word at 90 %, each medium one at 20 %, each
/// rare one at 1 %, and `filler` other words.
fn text(rng: &mut StdRng, filler: usize) -> String {
    let mut out = Vec::new();
    for (words, p) in [(COMMON, 0.9), (MEDIUM, 0.2), (RARE, 0.01)] {
        out.extend(words.iter().filter(|_| rng.gen_bool(p)));
    }
    for _ in 0..filler {
        out.push(["the", "of", "a", "and", "lorem", "ipsum"][rng.gen_range(0..6)]);
    }
    out.join(" ")
}

/// A title: two words of the vocabulary.
fn title(rng: &mut StdRng) -> String {
    format!("{} {}", pick(rng), pick(rng))
}

fn pick(rng: &mut StdRng) -> &'static str {
    match rng.gen_range(0..10) {
        0..=3 => COMMON[rng.gen_range(0..COMMON.len())],
        4..=8 => MEDIUM[rng.gen_range(0..MEDIUM.len())],
        _ => RARE[rng.gen_range(0..RARE.len())],
    }
}

fn query(rng: &mut StdRng) -> String {
    let n = rng.gen_range(1..=4);
    let mut parts = Vec::new();
    for i in 0..n {
        let mut word = pick(rng).to_owned();
        if rng.gen_bool(0.2) {
            word = word.to_uppercase();
        }
        if i > 0 && rng.gen_bool(0.15) {
            word = format!("-{word}");
        } else if i > 0 && rng.gen_bool(0.1) {
            word = format!("AND {word}");
        }
        parts.push(word);
        if rng.gen_bool(0.1) {
            parts.push("the".to_owned());
        }
    }
    parts.join(" ")
}

/// Scores equal within float rounding (the two paths add the same terms
/// in another order); the same documents wherever the scores differ.
/// Documents tied at the page's last score may be either, and so may those
/// tied at its first score on a later page: rounding can order a tie at the
/// boundary with the previous page either way.
fn assert_same(q: &str, later_page: bool, fast: &Results, exact: &Results) {
    assert_eq!(fast.total, exact.total, "{q}: total");
    assert_eq!(fast.facets, exact.facets, "{q}: facets");
    assert_eq!(fast.hits.len(), exact.hits.len(), "{q}: hits");
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * a.abs().max(1.0);
    for (a, b) in fast.hits.iter().zip(&exact.hits) {
        assert!(
            close(a.score, b.score),
            "{q}: scores {} and {} ({} and {})",
            a.score,
            b.score,
            a.title,
            b.title
        );
    }
    let (Some(first), Some(last)) = (exact.hits.first(), exact.hits.last()) else {
        return;
    };
    let (first, last) = (first.score, last.score);
    let clear = |r: &Results| {
        let mut ids: Vec<(Uuid, f32)> = r
            .hits
            .iter()
            .filter(|h| !(close(h.score, last) || (later_page && close(h.score, first))))
            .map(|h| (h.id, h.score))
            .collect();
        ids.sort_by_key(|(id, _)| *id);
        ids
    };
    let (a, b) = (clear(fast), clear(exact));
    assert_eq!(
        a.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        b.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        "{q}: hits clear of the page's boundaries (fast {a:?}, parser {b:?})"
    );
}

#[tokio::test]
async fn the_fast_path_answers_as_the_parser_does() {
    let db = TestDb::new().await;
    let events = store(&db);
    let mut rng = StdRng::seed_from_u64(7);
    let (user, customer) = (Uuid::now_v7(), Uuid::now_v7());
    let mut amend = Vec::new();
    let mut tasks = Vec::new();
    for n in 0..6_000 {
        let id = Uuid::now_v7();
        let name = title(&mut rng);
        let body = text(&mut rng, 20);
        let (stream, mut evs) = match n % 4 {
            0 | 1 => {
                let owner = if rng.gen_bool(0.3) {
                    user
                } else {
                    Uuid::now_v7()
                };
                let counterparty = match rng.gen_range(0..3) {
                    0 => "Backup Fibre GmbH",
                    1 => "Network Customer Ltd",
                    _ => "Globex",
                };
                let mut evs = vec![ev::drafted(&name, counterparty, &body, owner)];
                if rng.gen_bool(0.2) {
                    evs.push(ev::shared(Grantee::Role("legal".into())));
                }
                if rng.gen_bool(0.2) {
                    evs.push(ev::activated());
                }
                if rng.gen_bool(0.1) {
                    amend.push(id);
                }
                ("contract", evs)
            }
            2 => {
                let tags: Vec<&str> = MEDIUM
                    .iter()
                    .chain(COMMON)
                    .copied()
                    .filter(|_| rng.gen_bool(0.15))
                    .collect();
                (
                    "knowledge_article",
                    vec![ev::published(&name, &body, &tags)],
                )
            }
            _ => {
                let who = if rng.gen_bool(0.3) {
                    customer
                } else {
                    Uuid::now_v7()
                };
                let mut evs = vec![ev::opened(&name, &body, who)];
                for _ in 0..rng.gen_range(0..3) {
                    evs.push(ev::commented(&text(&mut rng, 5)));
                }
                ("ticket", evs)
            }
        };
        if stream == "knowledge_article" && rng.gen_bool(0.1) {
            evs.push(ev::revised(2, &title(&mut rng), &text(&mut rng, 10)));
        }
        let events = events.clone();
        tasks.push(tokio::spawn(async move {
            append(&events, "acme", stream, id, evs).await
        }));
        if tasks.len() == 32 {
            for t in tasks.drain(..) {
                t.await.unwrap();
            }
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    for id in &amend {
        append(
            &events,
            "acme",
            "contract",
            *id,
            vec![ev::amended(1, &text(&mut rng, 20))],
        )
        .await;
    }

    // Several segments, the amendments deleting documents of earlier ones.
    let dir = tempfile::tempdir().unwrap();
    let mut indexer =
        Indexer::open_current(&Layout::new(dir.path()), WriterOptions::default()).unwrap();
    let commits = commit_in_batches(&events, &mut indexer, 5_000).await;
    let snapshot = caught_up(&Arc::new(Reader::new(dir.path())), indexer.position()).await;
    assert!(
        snapshot.searcher.segment_readers().len() > 1 && commits > 1,
        "one segment only"
    );

    let scopes = [
        admin("acme"),
        Scope {
            tenant: "acme".into(),
            contracts: ContractAccess::Granted {
                user,
                roles: vec!["legal".into()],
            },
            tickets: TicketAccess::Customer(customer),
        },
        Scope {
            tenant: "acme".into(),
            contracts: ContractAccess::Granted {
                user: Uuid::now_v7(),
                roles: vec![],
            },
            tickets: TicketAccess::None,
        },
    ];
    let stats = StatsCache::default();
    let mut queries: Vec<String> = (0..400).map(|_| query(&mut rng)).collect();
    queries.extend(
        [
            "service network",
            "service network customer",
            "network -customer",
            "file files",
            "modem connectivity",
            "quasar service",
            "the service",
            "service service",
        ]
        .map(String::from),
    );
    let (mut dense, mut sparse) = (0, 0);
    for (n, q) in queries.iter().enumerate() {
        let scope = &scopes[n % scopes.len()];
        let mut request = Request {
            q: q.clone(),
            limit: 20,
            offset: if n % 5 == 0 { 20 } else { 0 },
            ..Default::default()
        };
        if n % 7 == 0 {
            request.kinds = vec![Kind::Contract, Kind::Ticket];
        }
        if n % 11 == 0 {
            request.statuses = vec!["draft".into(), "open".into()];
        }
        let fast = query::search(&snapshot, &stats, scope, &request)
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        let exact = query::search_without_fast_path(&snapshot, &stats, scope, &request)
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        let label = format!("{q} (offset {})", request.offset);
        assert_same(&label, request.offset > 0, &fast, &exact);
        // Thousands of matches: WAND ranks them. A few among thousands
        // of documents with one of the words: the parser's intersection
        // ranks them (or WAND gives up on them).
        if fast.total > 2_000 {
            dense += 1;
        } else if (1..100).contains(&fast.total) {
            sparse += 1;
        }
    }
    assert!(
        dense >= 10 && sparse >= 10,
        "{dense} queries matched thousands and {sparse} a few: both ways need 10"
    );
}
