//! `chronicle-bench search`: the search projection on real text.
//!
//! 1. Builds a corpus of at least `--docs` documents from what the
//!    operating system ships (license texts and package copyright files as
//!    contracts, section-1 man pages as knowledge articles; repeated with a
//!    small variation each time round when there are fewer), and appends
//!    each as a real event (`contract.drafted`, `knowledge_article.
//!    published`) through the event store of a scratch database.
//! 2. Indexes them from the event stream with the search projection as it
//!    runs in production (lease, batches, commits with the position),
//!    timing docs/s and MB/s of text.
//! 3. Runs a fixed query set (each man page sample's NAME description, the
//!    license names, a few common words) for `--rounds` rounds through the
//!    query side (access filter, scoring, snippets, facets), and the same
//!    queries through PostgreSQL full-text search on the same documents
//!    (a `tsvector` column, titles weighted A over bodies B, a GIN index,
//!    `plainto_tsquery`, ordered by `ts_rank`, the same page size), in the
//!    same run, interleaved per round.
//! 4. Issues contract drafts through the command handler at a steady rate
//!    while the projection runs live, and times each until a search
//!    snapshot reflects it (freshness).
//!
//! The last line is one JSON object with every figure.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_commands::{CommandHandler, Context};
use chronicle_domain::contract::{
    Contact, Contract, ContractCommand, Counterparty, DraftContract, Party, PartyKind,
};
use chronicle_domain::value::{Currency, Email, LongText, Money, ShortText};
use chronicle_projections::positions::Positions;
use chronicle_search::corpus::{self, CorpusDoc, KnownQuery};
use chronicle_search::doc::Kind;
use chronicle_search::index::Reader;
use chronicle_search::query::{self, ContractAccess, Request, Scope, StatsCache, TicketAccess};
use chronicle_store::postgres::PgEventStore;
use chronicle_store::{
    EventStore, ExpectedVersion, NewEvent, StreamId, StreamRef, TenantId, TypeName,
};
use hdrhistogram::Histogram;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use super::{metadata, scratch_database};

#[derive(clap::Args, Clone)]
pub struct SearchArgs {
    /// Documents to index (at least).
    #[arg(long, default_value_t = 100_000)]
    docs: usize,
    /// Characters of each body kept (the domain allows 100,000).
    #[arg(long, default_value_t = 4_000)]
    max_body: usize,
    /// Rounds over the query set (medians of per-round percentiles).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Hits per query (the API's default page).
    #[arg(long, default_value_t = query::DEFAULT_LIMIT)]
    limit: usize,
    /// Commands per second for the freshness measurement.
    #[arg(long, default_value_t = 20)]
    rate: u64,
    /// Seconds of the freshness measurement.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
}

/// The corpus, repeated with a variation per copy until it holds `n`.
fn documents(n: usize, max_body: usize) -> Vec<CorpusDoc> {
    let cut = |s: &str| s.chars().take(max_body).collect::<String>();
    let mut unique = corpus::licenses(Path::new("/usr/share/common-licenses"));
    unique.extend(corpus::copyrights(
        Path::new("/usr/share/doc"),
        1,
        usize::MAX,
    ));
    unique.extend(corpus::man_pages(
        Path::new("/usr/share/man/man1"),
        1,
        usize::MAX,
    ));
    let mut out = Vec::with_capacity(n);
    let mut copy = 0;
    while out.len() < n && !unique.is_empty() {
        for doc in &unique {
            if out.len() >= n {
                break;
            }
            let mut d = doc.clone();
            if copy > 0 {
                // Another copy: its own title, and one paragraph fewer.
                d.title = format!("{} ({copy})", d.title);
                let paragraphs: Vec<&str> = doc.body.split("\n\n").collect();
                if paragraphs.len() > 1 {
                    let drop = copy % paragraphs.len();
                    d.body = paragraphs
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != drop)
                        .map(|(_, p)| *p)
                        .collect::<Vec<_>>()
                        .join("\n\n");
                }
            }
            d.body = cut(&d.body);
            out.push(d);
        }
        copy += 1;
    }
    out
}

/// The fixed query set: every 10th man page description (8 words at
/// most), the license names, and common words.
fn queries(docs: &[CorpusDoc]) -> Vec<KnownQuery> {
    let unique: Vec<CorpusDoc> = docs
        .iter()
        .filter(|d| !d.title.ends_with(')'))
        .cloned()
        .collect();
    let mut out = corpus::license_queries(&unique);
    out.extend(corpus::man_queries(&unique, 40, 8));
    for q in [
        "license",
        "free software",
        "network socket",
        "print the version",
        "configuration file",
        "copyright holders",
        "gnu general public",
        "display help",
        "warranty",
        "compress files",
    ] {
        out.push(KnownQuery {
            q: q.to_owned(),
            answers: Vec::new(),
        });
    }
    out
}

fn percentile(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub async fn run(args: SearchArgs) -> anyhow::Result<()> {
    let scratch = scratch_database("chronicle_bench_search").await?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(&scratch.url)
        .await?;
    chronicle_store::MIGRATOR.run(&pool).await?;
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let data = tempfile::Builder::new()
        .prefix("chronicle-bench-search-")
        .tempdir()?;

    // 1. The corpus, as events.
    let t = Instant::now();
    let docs = documents(args.docs, args.max_body);
    anyhow::ensure!(
        docs.len() >= args.docs,
        "the operating system's texts gave only {} documents",
        docs.len()
    );
    let text_bytes: usize = docs.iter().map(|d| d.title.len() + d.body.len()).sum();
    let contracts = docs.iter().filter(|d| d.kind == Kind::Contract).count();
    eprintln!(
        "corpus: {} documents ({contracts} contracts, {} articles), {:.1} MB of text, read in {:.1} s",
        docs.len(),
        docs.len() - contracts,
        text_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let docs = Arc::new(docs);
    let writers = 4;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, docs) = (store.clone(), docs.clone());
            tokio::spawn(async move {
                let tenant = TenantId::parse("bench")?;
                let owner = Uuid::now_v7();
                for doc in docs.iter().skip(w).step_by(writers) {
                    let stream_type = match doc.kind {
                        Kind::Contract => "contract",
                        _ => "knowledge_article",
                    };
                    let stream = StreamRef {
                        tenant: tenant.clone(),
                        stream_type: TypeName::parse(stream_type)?,
                        id: StreamId::parse(Uuid::now_v7().to_string())?,
                    };
                    let e = doc.event(owner, chrono::Utc::now());
                    let event = NewEvent {
                        event_id: Uuid::now_v7(),
                        event_type: TypeName::parse(e.event_type)?,
                        schema_version: e.schema_version,
                        data: e.data,
                        metadata: metadata(),
                        personal: None,
                    };
                    store
                        .append(&stream, ExpectedVersion::NoStream, &[event])
                        .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let head = store.head_position().await?;
    eprintln!(
        "appended {} events in {:.1} s",
        docs.len(),
        t.elapsed().as_secs_f64()
    );
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;

    // 2. Indexing from the event stream, with the projection as it runs.
    let positions = Positions::follow(pool.clone());
    let reader = Arc::new(Reader::new(data.path()));
    chronicle_search::indexer::follow(reader.clone(), positions.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let options = chronicle_search::indexer::Options::new(data.path().to_owned());
    let t = Instant::now();
    let indexer = tokio::spawn(chronicle_search::indexer::run(
        store.clone(),
        (*pool.connect_options()).clone(),
        options,
        stopped,
    ));
    reader
        .wait_for(head, Duration::from_secs(3600))
        .await
        .map_err(|at| anyhow::anyhow!("indexing stopped at {at} of {head}"))?;
    let index_secs = t.elapsed().as_secs_f64();
    let docs_per_s = docs.len() as f64 / index_secs;
    let mb_per_s = text_bytes as f64 / 1e6 / index_secs;
    let snapshot = reader
        .snapshot()
        .ok_or_else(|| anyhow::anyhow!("no index"))?;
    let index_bytes = reader
        .layout()
        .current()?
        .map(|name| reader.layout().size(&name))
        .unwrap_or(0);
    eprintln!(
        "indexed {} documents from the log in {index_secs:.1} s: {docs_per_s:.0} docs/s, \
         {mb_per_s:.1} MB/s; index {:.1} MB",
        snapshot.searcher.num_docs(),
        index_bytes as f64 / 1e6
    );

    // The same documents in PostgreSQL full-text search.
    let t = Instant::now();
    sqlx::query(
        "CREATE TABLE fts_docs (id bigserial PRIMARY KEY, kind text NOT NULL, status text NOT NULL, \
         title text NOT NULL, body text NOT NULL, \
         tsv tsvector GENERATED ALWAYS AS \
         (setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')) STORED)",
    )
    .execute(&pool)
    .await?;
    for chunk in docs.chunks(2_000) {
        let (titles, bodies): (Vec<String>, Vec<String>) = chunk
            .iter()
            .map(|d| (d.title.clone(), d.body.clone()))
            .unzip();
        let (kinds, statuses): (Vec<&str>, Vec<&str>) = chunk
            .iter()
            .map(|d| match d.kind {
                Kind::Contract => ("contract", "draft"),
                _ => ("kb", "published"),
            })
            .unzip();
        sqlx::query(
            "INSERT INTO fts_docs (kind, status, title, body) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])",
        )
        .bind(&kinds)
        .bind(&statuses)
        .bind(&titles)
        .bind(&bodies)
        .execute(&pool)
        .await?;
    }
    sqlx::query("CREATE INDEX fts_docs_tsv ON fts_docs USING gin (tsv)")
        .execute(&pool)
        .await?;
    sqlx::query("VACUUM ANALYZE fts_docs")
        .execute(&pool)
        .await?;
    let pg_build_secs = t.elapsed().as_secs_f64();
    eprintln!("PostgreSQL FTS table and GIN index built in {pg_build_secs:.1} s");

    // 3. Query latency, both engines, same queries, same run: on the
    // snapshot readers have now, as the API takes the latest per request
    // (the indexer merges the catch-up's segments once idle).
    let snapshot = reader
        .snapshot()
        .ok_or_else(|| anyhow::anyhow!("no index"))?;
    let segments = snapshot.searcher.segment_readers().len();
    eprintln!("querying an index of {segments} segment(s)");
    let queries = queries(&docs);
    let scope = Scope {
        tenant: "bench".into(),
        contracts: ContractAccess::All,
        tickets: TicketAccess::All,
    };
    // A caller who sees part of the index only (a customer: the articles,
    // no contract, no ticket): scores then use statistics of what they see.
    let restricted = Scope {
        tenant: "bench".into(),
        contracts: ContractAccess::Granted {
            user: Uuid::now_v7(),
            roles: vec!["customer".into()],
        },
        tickets: TicketAccess::Customer(Uuid::now_v7()),
    };
    let stats = Arc::new(StatsCache::default());
    let mut pg_conn = pool.acquire().await?;
    let (mut t50, mut t99, mut p50, mut p99, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut r50, mut r99) = (Vec::new(), Vec::new());
    let (mut f50, mut f99, mut full_ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut t_hits1, mut p_hits1, mut judged) = (0, 0, 0);
    // Per query, its slowest time over the rounds (tantivy, PostgreSQL).
    let mut slowest = vec![(0u64, 0u64); queries.len()];
    for round in 0..args.rounds {
        let mut tantivy = Histogram::<u64>::new(3)?;
        let mut postgres = Histogram::<u64>::new(3)?;
        let mut postgres_full = Histogram::<u64>::new(3)?;
        let mut narrow = Histogram::<u64>::new(3)?;
        for (n, known) in queries.iter().enumerate() {
            let request = Request {
                q: known.q.clone(),
                limit: args.limit,
                ..Default::default()
            };
            let (snap, st, sc) = (snapshot.clone(), stats.clone(), scope.clone());
            let started = Instant::now();
            let results =
                tokio::task::spawn_blocking(move || query::search(&snap, &st, &sc, &request))
                    .await??;
            let took = (started.elapsed().as_micros() as u64).max(1);
            tantivy.record(took)?;
            slowest[n].0 = slowest[n].0.max(took);

            let request = Request {
                q: known.q.clone(),
                limit: args.limit,
                ..Default::default()
            };
            let (snap, st, sc) = (snapshot.clone(), stats.clone(), restricted.clone());
            let started = Instant::now();
            tokio::task::spawn_blocking(move || query::search(&snap, &st, &sc, &request)).await??;
            narrow.record((started.elapsed().as_micros() as u64).max(1))?;

            let started = Instant::now();
            let found: Vec<String> = sqlx::query_scalar(
                "SELECT title FROM fts_docs, plainto_tsquery('english', $1) q \
                 WHERE tsv @@ q ORDER BY ts_rank(tsv, q) DESC LIMIT $2",
            )
            .bind(&known.q)
            .bind(args.limit as i64)
            .fetch_all(&mut *pg_conn)
            .await?;
            let took = (started.elapsed().as_micros() as u64).max(1);
            postgres.record(took)?;
            slowest[n].1 = slowest[n].1.max(took);

            // What the API answers, in SQL: the page with highlighted
            // snippets, the total and the counts by type and status.
            let started = Instant::now();
            let _: PgFull = sqlx::query_as(PG_FULL)
                .bind(&known.q)
                .bind(args.limit as i64)
                .fetch_one(&mut *pg_conn)
                .await?;
            postgres_full.record((started.elapsed().as_micros() as u64).max(1))?;
            if round == 0 && !known.answers.is_empty() {
                judged += 1;
                if results
                    .hits
                    .first()
                    .is_some_and(|h| known.answers.contains(&h.title))
                {
                    t_hits1 += 1;
                }
                if found.first().is_some_and(|t| known.answers.contains(t)) {
                    p_hits1 += 1;
                }
            }
        }
        let (a50, a99) = (percentile(&tantivy, 0.5), percentile(&tantivy, 0.99));
        let (b50, b99) = (percentile(&postgres, 0.5), percentile(&postgres, 0.99));
        let (c50, c99) = (percentile(&narrow, 0.5), percentile(&narrow, 0.99));
        let (d50, d99) = (
            percentile(&postgres_full, 0.5),
            percentile(&postgres_full, 0.99),
        );
        eprintln!(
            "round {}: {} queries; tantivy p50 {a50:.2} ms, p99 {a99:.2} ms \
             (restricted caller: p50 {c50:.2} ms, p99 {c99:.2} ms); \
             PostgreSQL FTS top {} titles p50 {b50:.2} ms, p99 {b99:.2} ms (ratio {:.1}); \
             PostgreSQL FTS, the API's whole answer p50 {d50:.2} ms, p99 {d99:.2} ms (ratio {:.1})",
            round + 1,
            queries.len(),
            args.limit,
            b99 / a99,
            d99 / a99
        );
        f50.push(d50);
        f99.push(d99);
        full_ratios.push(d99 / a99);
        r50.push(c50);
        r99.push(c99);
        t50.push(a50);
        t99.push(a99);
        p50.push(b50);
        p99.push(b99);
        ratios.push(b99 / a99);
    }
    drop(pg_conn);
    for (engine, pick) in [
        ("tantivy", (|t: &(u64, u64)| t.0) as fn(&(u64, u64)) -> u64),
        ("PostgreSQL FTS", |t: &(u64, u64)| t.1),
    ] {
        let mut order: Vec<usize> = (0..queries.len()).collect();
        order.sort_by_key(|&n| std::cmp::Reverse(pick(&slowest[n])));
        let named: Vec<String> = order
            .iter()
            .take(6)
            .map(|&n| {
                format!(
                    "{:?} {:.1} ms",
                    queries[n].q,
                    pick(&slowest[n]) as f64 / 1000.0
                )
            })
            .collect();
        eprintln!("slowest for {engine} (worst round): {}", named.join(", "));
    }

    // 4. Freshness: commands at a steady rate while the projection is live.
    let commands = CommandHandler::new(store.clone());
    let mut lag = Histogram::<u64>::new(3)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let mut issued = 0u64;
    while Instant::now() < end {
        ticker.tick().await;
        issued += 1;
        let (commands, reader, stats, tx) =
            (commands.clone(), reader.clone(), stats.clone(), tx.clone());
        let word = format!(
            "fresh{issued}x{}",
            &Uuid::new_v4().simple().to_string()[..10]
        );
        tokio::spawn(async move {
            let Ok(outcome) = commands
                .execute::<Contract>(
                    &StreamId::parse(Uuid::now_v7().to_string()).expect("uuid"),
                    &Context::new(TenantId::parse("bench").expect("valid"), "bench"),
                    &draft(&word),
                )
                .await
            else {
                return;
            };
            let done = Instant::now();
            if reader
                .wait_for(outcome.position, Duration::from_secs(30))
                .await
                .is_err()
            {
                return;
            }
            // Searchable: a search of that snapshot finds it.
            let Some(snapshot) = reader.snapshot() else {
                return;
            };
            let scope = Scope {
                tenant: "bench".into(),
                contracts: ContractAccess::All,
                tickets: TicketAccess::All,
            };
            let request = Request {
                q: word,
                limit: 1,
                ..Default::default()
            };
            let found = tokio::task::spawn_blocking(move || {
                query::search(&snapshot, &stats, &scope, &request).map(|r| r.total)
            })
            .await;
            if matches!(found, Ok(Ok(1))) {
                let _ = tx.send(done.elapsed().as_micros() as u64);
            }
        });
    }
    drop(tx);
    let mut seen = 0u64;
    while let Some(us) = rx.recv().await {
        lag.record(us.max(1))?;
        seen += 1;
    }
    eprintln!(
        "freshness at {} commands/s ({seen}/{issued} found): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.rate,
        percentile(&lag, 0.5),
        percentile(&lag, 0.99),
        lag.max() as f64 / 1000.0
    );
    let _ = stop.send(true);
    let _ = indexer.await;

    let (tantivy_p50, tantivy_p99) = (median(t50), median(t99));
    let (pg_p50, pg_p99) = (median(p50), median(p99));
    let ratio = median(ratios);
    eprintln!(
        "medians over {} rounds: tantivy p50 {tantivy_p50:.2} ms, p99 {tantivy_p99:.2} ms; \
         PostgreSQL FTS p50 {pg_p50:.2} ms, p99 {pg_p99:.2} ms; PostgreSQL p99 / tantivy p99 = {ratio:.1}",
        args.rounds
    );
    println!(
        "{}",
        json!({
            "bench": "search",
            "documents": docs.len(),
            "contracts": contracts,
            "articles": docs.len() - contracts,
            "text_mb": (text_bytes as f64 / 1e5).round() / 10.0,
            "index_mb": (index_bytes as f64 / 1e5).round() / 10.0,
            "index_segments_queried": segments,
            "index_seconds": (index_secs * 10.0).round() / 10.0,
            "index_docs_per_s": docs_per_s.round(),
            "index_mb_per_s": (mb_per_s * 10.0).round() / 10.0,
            "pg_fts_build_seconds": (pg_build_secs * 10.0).round() / 10.0,
            "queries": queries.len(),
            "rounds": args.rounds,
            "limit": args.limit,
            "tantivy_p50_ms": tantivy_p50,
            "tantivy_p99_ms": tantivy_p99,
            "tantivy_restricted_p50_ms": median(r50),
            "tantivy_restricted_p99_ms": median(r99),
            "pg_fts_p50_ms": pg_p50,
            "pg_fts_p99_ms": pg_p99,
            "p99_ratio_pg_over_tantivy": (ratio * 10.0).round() / 10.0,
            "pg_fts_full_p50_ms": median(f50),
            "pg_fts_full_p99_ms": median(f99),
            "p99_ratio_pg_full_over_tantivy": (median(full_ratios) * 10.0).round() / 10.0,
            "hit_at_1_tantivy": (t_hits1 as f64 / judged.max(1) as f64 * 1000.0).round() / 1000.0,
            "hit_at_1_pg_fts": (p_hits1 as f64 / judged.max(1) as f64 * 1000.0).round() / 1000.0,
            "freshness_rate_per_s": args.rate,
            "freshness_seen": seen,
            "freshness_p50_ms": percentile(&lag, 0.5),
            "freshness_p99_ms": percentile(&lag, 0.99),
            "freshness_max_ms": lag.max() as f64 / 1000.0,
        })
    );
    Ok(())
}

type PgFull = (
    i64,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
);

/// PostgreSQL computing what `GET /api/v1/search` answers: the best `$2`
/// with `ts_headline` snippets, the total, the counts by type and status.
const PG_FULL: &str = "
WITH q AS (SELECT plainto_tsquery('english', $1) AS q),
m AS (SELECT d.id, d.kind, d.status, d.title, d.body, ts_rank(d.tsv, q.q) AS rank
      FROM fts_docs d, q WHERE d.tsv @@ q.q),
page AS (SELECT * FROM m ORDER BY rank DESC LIMIT $2)
SELECT (SELECT count(*) FROM m),
       (SELECT json_object_agg(kind, n) FROM (SELECT kind, count(*) AS n FROM m GROUP BY kind) k),
       (SELECT json_object_agg(status, n) FROM (SELECT status, count(*) AS n FROM m GROUP BY status) s),
       (SELECT json_agg(json_build_object('id', p.id, 'title', p.title, 'score', p.rank,
                'snippet', ts_headline('english', p.body, q.q, 'MaxFragments=1, MaxWords=30')))
        FROM page p, q)";

fn draft(word: &str) -> ContractCommand {
    let text = |s: &str| ShortText::parse("text", s.to_owned()).expect("valid");
    ContractCommand::Draft(DraftContract {
        title: text(&format!("Fresh deal {word}")),
        parties: vec![Party {
            name: text("Globex Corp"),
            kind: PartyKind::Organisation,
            role: text("customer"),
        }],
        counterparty: Counterparty {
            organisation: text("Globex Corp"),
            contact: Contact {
                name: text("Hank Scorpio"),
                email: Email::parse("email", "hank@globex.example").expect("valid"),
            },
        },
        value: Money {
            amount_minor: 100_000,
            currency: Currency::parse("currency", "EUR").expect("valid"),
        },
        start_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid"),
        end_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 31).expect("valid"),
        body: LongText::parse("body", format!("Managed fibre, {word}.")).expect("valid"),
        owner: Uuid::now_v7(),
        at: chrono::Utc::now(),
    })
}
