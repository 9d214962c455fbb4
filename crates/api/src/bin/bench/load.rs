//! `chronicle-bench load`: drives the HTTP API from this process with a
//! mixed workload at fixed concurrency, against a `chronicle serve` it
//! starts (or `--url`), and prints commands/s and latency percentiles.
//!
//! Each virtual user cycles through three flows, one command per request:
//! a ticket's life (the customer opens it and comments, a manager assigns
//! an expert, who accepts, starts and resolves it: six commands), a lead
//! captured and advanced to a submitted design (capture, owner, qualify,
//! serviceability, design: five), and a contract drafted and amended twice
//! (three). Every command is counted, per flow and in total.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(clap::Args, Clone)]
pub struct LoadArgs {
    /// Concurrent virtual users.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of load after a short warm-up.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Seconds of warm-up (not measured).
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// An already running API (then `--secret` must be its JWT secret);
    /// default: start `chronicle serve` on a scratch database.
    #[arg(long)]
    url: Option<String>,
    /// The HS256 secret of the API at `--url`.
    #[arg(long, env = "CHRONICLE_JWT_SECRET")]
    secret: Option<String>,
}

const BENCH_SECRET: &str = "chronicle-bench-load-secret-0123456789";

/// `chronicle serve` as a child process; killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling our own child: SIGTERM, a graceful stop.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

fn token(secret: &str, tenant: &str, user: Uuid, roles: &[&str]) -> anyhow::Result<String> {
    let claims = json!({
        "sub": user.to_string(),
        "tenant": tenant,
        "roles": roles,
        "exp": chrono::Utc::now().timestamp() + 24 * 3600,
    });
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

async fn start_server() -> anyhow::Result<(String, Server, crate::Scratch)> {
    let scratch = crate::scratch_database("chronicle_bench_load").await?;
    let exe = std::env::current_exe()?
        .parent()
        .map(|d| d.join("chronicle"))
        .context("locating the chronicle binary")?;
    anyhow::ensure!(
        exe.exists(),
        "{} not found: build it (cargo build --release --bin chronicle)",
        exe.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let migrate = Command::new(&exe)
        .arg("migrate")
        .env("DATABASE_URL", &scratch.url)
        .env("RUST_LOG", "warn")
        .status()?;
    anyhow::ensure!(migrate.success(), "chronicle migrate failed");
    let child = Command::new(&exe)
        .arg("serve")
        .env("DATABASE_URL", &scratch.url)
        .env("CHRONICLE_LISTEN", format!("127.0.0.1:{port}"))
        .env("CHRONICLE_JWT_SECRET", BENCH_SECRET)
        .env("CHRONICLE_RATE_LIMIT", "100000000")
        .env("CHRONICLE_DB_POOL", "48")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()?;
    let server = Server(child);
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "chronicle serve did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((url, server, scratch))
}

struct User {
    client: reqwest::Client,
    url: String,
    customer: String,
    manager: String,
    expert: String,
    expert_id: Uuid,
    sales: String,
    sales_id: Uuid,
}

/// The flows a virtual user cycles through, in order.
const FLOWS: [&str; 3] = ["ticket", "lead", "contract"];

impl User {
    /// One command; returns whether it succeeded.
    async fn command(&self, token: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }

    /// A ticket's life: six commands. Records each latency.
    async fn ticket_flow(&self, hist: &mut Histogram<u64>, n: u64) -> anyhow::Result<u64> {
        let mut timed =
            |started: Instant| hist.saturating_record(started.elapsed().as_micros() as u64);
        let t = Instant::now();
        let opened = self
            .command(
                &self.customer,
                "/api/v1/tickets",
                json!({
                    "contact": { "name": "Ann Customer", "email": "ann@example.com" },
                    "product": "fibre-1000",
                    "category": "connectivity",
                    "priority": "P2",
                    "required_skill": "networking",
                    "title": format!("Packet loss on uplink {n}"),
                    "description": "Loss of 2-5 % during business hours since Monday."
                }),
            )
            .await?;
        timed(t);
        let id = opened["id"].as_str().context("no id")?.to_owned();
        let steps: [(&str, &str, Value); 5] = [
            (
                &self.customer,
                "comments",
                json!({ "body": "Still failing this morning." }),
            ),
            (
                &self.manager,
                "assign",
                json!({ "expert_id": self.expert_id }),
            ),
            (&self.expert, "accept", json!({})),
            (&self.expert, "start", json!({})),
            (
                &self.expert,
                "resolve",
                json!({ "resolution": "Replaced the faulty SFP." }),
            ),
        ];
        for (token, action, body) in steps {
            let t = Instant::now();
            self.command(token, &format!("/api/v1/tickets/{id}/{action}"), body)
                .await?;
            timed(t);
        }
        Ok(6)
    }

    /// A lead captured and advanced to a submitted design: five commands.
    async fn lead_flow(&self, hist: &mut Histogram<u64>, n: u64) -> anyhow::Result<u64> {
        let mut timed =
            |started: Instant| hist.saturating_record(started.elapsed().as_micros() as u64);
        let t = Instant::now();
        let captured = self
            .command(
                &self.sales,
                "/api/v1/leads",
                json!({
                    "company": format!("Initech {n} GmbH"),
                    "contact": { "name": "Peter Gibbons", "email": "peter@initech.example", "phone": "+49 30 1234" },
                    "site_address": "Hauptstrasse 1, 10115 Berlin",
                    "service": "Dedicated Internet Access",
                    "bandwidth_mbps": 1000,
                    "estimated_value": { "amount_minor": 1_200_000, "currency": "EUR" },
                    "source": "web form"
                }),
            )
            .await?;
        timed(t);
        let id = captured["id"].as_str().context("no id")?.to_owned();
        let steps: [(&str, &str, Value); 4] = [
            (&self.manager, "owner", json!({ "owner_id": self.sales_id })),
            (&self.sales, "qualify", json!({ "score": 80 })),
            (
                &self.sales,
                "serviceability",
                json!({ "feasible": true, "notes": "Fibre in the street" }),
            ),
            (
                &self.sales,
                "designs",
                json!({
                    "summary": "Dual-homed 1G",
                    "specification": "Two diverse fibre paths, BGP, /29.",
                    "documents": [{ "document_id": Uuid::now_v7(), "name": "topology.pdf" }]
                }),
            ),
        ];
        for (token, action, body) in steps {
            let t = Instant::now();
            self.command(token, &format!("/api/v1/leads/{id}/{action}"), body)
                .await?;
            timed(t);
        }
        Ok(5)
    }

    /// A contract drafted and amended twice: three commands.
    async fn contract_flow(&self, hist: &mut Histogram<u64>, n: u64) -> anyhow::Result<u64> {
        let mut timed =
            |started: Instant| hist.saturating_record(started.elapsed().as_micros() as u64);
        let t = Instant::now();
        let drafted = self
            .command(
                &self.sales,
                "/api/v1/contracts",
                json!({
                    "title": format!("Managed fibre, {n} sites"),
                    "parties": [
                        { "name": "Acme Networks Ltd", "kind": "organisation", "role": "supplier" },
                        { "name": "Globex Corp", "kind": "organisation", "role": "customer" }
                    ],
                    "counterparty": {
                        "organisation": "Globex Corp",
                        "contact": { "name": "Hank Scorpio", "email": "hank@globex.example" }
                    },
                    "value": { "amount_minor": 12_000_000, "currency": "EUR" },
                    "start_date": "2027-01-01",
                    "end_date": "2027-12-31",
                    "body": "The supplier provides managed fibre to the customer's three sites."
                }),
            )
            .await?;
        timed(t);
        let id = drafted["id"].as_str().context("no id")?.to_owned();
        for (minor, body) in [
            (
                15_000_000,
                "The supplier provides managed fibre to four sites.",
            ),
            (
                18_000_000,
                "The supplier provides managed fibre to five sites.",
            ),
        ] {
            let t = Instant::now();
            self.command(
                &self.sales,
                &format!("/api/v1/contracts/{id}/amend"),
                json!({
                    "terms": {
                        "value": { "amount_minor": minor, "currency": "EUR" },
                        "start_date": "2027-01-01",
                        "end_date": "2027-12-31"
                    },
                    "body": body
                }),
            )
            .await?;
            timed(t);
        }
        Ok(3)
    }

    /// Flow number `n` of this user: ticket, lead, contract, ticket, ...
    async fn flow(&self, hist: &mut Histogram<u64>, n: u64) -> (usize, anyhow::Result<u64>) {
        let kind = (n % FLOWS.len() as u64) as usize;
        let done = match kind {
            0 => self.ticket_flow(hist, n).await,
            1 => self.lead_flow(hist, n).await,
            _ => self.contract_flow(hist, n).await,
        };
        (kind, done)
    }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let (url, secret, _server) = match &args.url {
        Some(url) => (
            url.trim_end_matches('/').to_owned(),
            args.secret
                .clone()
                .context("--secret (or CHRONICLE_JWT_SECRET) is needed with --url")?,
            None,
        ),
        None => {
            let (url, server, scratch) = start_server().await?;
            (url, BENCH_SECRET.to_owned(), Some((server, scratch)))
        }
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let mut users = Vec::new();
    for _ in 0..args.concurrency {
        let expert_id = Uuid::now_v7();
        let sales_id = Uuid::now_v7();
        users.push(Arc::new(User {
            client: client.clone(),
            url: url.clone(),
            customer: token(&secret, "bench", Uuid::now_v7(), &["customer"])?,
            manager: token(&secret, "bench", Uuid::now_v7(), &["manager"])?,
            expert: token(&secret, "bench", expert_id, &["expert"])?,
            expert_id,
            sales: token(&secret, "bench", sales_id, &["sales"])?,
            sales_id,
        }));
    }

    // Warm-up, then the measured run.
    let mut report = None;
    for (phase, seconds) in [("warm-up", args.warmup), ("load", args.seconds)] {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for user in &users {
            let (user, stop) = (user.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut hist =
                    Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram");
                let (mut commands, mut errors, mut n) = ([0u64; FLOWS.len()], 0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    match user.flow(&mut hist, n).await {
                        (kind, Ok(c)) => commands[kind] += c,
                        (_, Err(error)) => {
                            errors += 1;
                            if errors <= 3 {
                                eprintln!("error: {error:#}");
                            }
                        }
                    }
                    n += 1;
                }
                (commands, errors, hist)
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        let (mut per_flow, mut errors) = ([0u64; FLOWS.len()], 0);
        for task in tasks {
            let (c, e, h) = task.await?;
            for (total, c) in per_flow.iter_mut().zip(c) {
                *total += c;
            }
            errors += e;
            hist.add(h)?;
        }
        let commands: u64 = per_flow.iter().sum();
        let elapsed = started.elapsed().as_secs_f64();
        let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        eprintln!(
            "{phase}: {commands} commands in {elapsed:.1} s = {:.0}/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {errors} failed flows; commands by flow: ticket {}, lead {}, contract {}",
            commands as f64 / elapsed,
            ms(0.5),
            ms(0.99),
            hist.max() as f64 / 1000.0,
            per_flow[0],
            per_flow[1],
            per_flow[2],
        );
        report = Some(json!({
            "bench": "load",
            "concurrency": args.concurrency,
            "seconds": elapsed,
            "commands": commands,
            "commands_by_flow": FLOWS.iter().zip(per_flow).map(|(f, c)| (f.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
            "commands_per_s": (commands as f64 / elapsed).round(),
            "latency_ms": { "p50": ms(0.5), "p99": ms(0.99), "max": hist.max() as f64 / 1000.0 },
            "failed_flows": errors,
        }));
    }
    println!("{}", report.unwrap_or(Value::Null));
    Ok(())
}
