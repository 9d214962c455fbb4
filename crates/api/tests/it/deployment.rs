//! The deployment of `ops/compose.yaml` played with real processes on this
//! machine: one PostgreSQL of our own (so that it can be restarted), the
//! migration step, two `chronicle serve` and two `chronicle project`.
//!
//! 1. Load through both APIs; the read models count every event once.
//! 2. SIGKILL the projector holding the leases: the other one takes every
//!    projection over within 5 s and no event is applied twice.
//! 3. SIGKILL one API while a client keeps sending to the other: every
//!    request to the other succeeds.
//! 4. Restart PostgreSQL under load from both APIs: clients see errors
//!    during the outage, the processes report the database down, then
//!    everything recovers, every acknowledged command's event is in the log
//!    and the projections apply every event exactly once.
//!
//! Killed processes are started again, as the compose file's restart
//! policy does. Everything is polled with deadlines.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chronicle_store::embedded::{self, EmbeddedPostgres};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{token, SECRET};

const TENANT: &str = "acme";
const WEBHOOK_SECRET: &str = "deploy-test-webhook-secret-0123456789abc";
/// The processes of the compose file this test plays (checked against it).
const APIS: usize = 2;
const PROJECTORS: usize = 2;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `chronicle` process of the deployment, killed when dropped.
struct Process {
    name: String,
    /// The API's port, or the projector's metrics port.
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill(&mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One PostgreSQL, the processes, and a pool of the test's own.
struct Deployment {
    dir: tempfile::TempDir,
    pg: Option<EmbeddedPostgres>,
    pg_port: u16,
    url: String,
    pool: PgPool,
    apis: Vec<Process>,
    projectors: Vec<Process>,
    client: reqwest::Client,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in self.apis.iter().chain(&self.projectors) {
                let text = std::fs::read_to_string(&p.log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                eprintln!("--- last lines of {} (pid {}) ---", p.name, p.child.id());
                for line in &lines[lines.len().saturating_sub(15)..] {
                    eprintln!("{line}");
                }
            }
        }
        for p in self.apis.iter_mut().chain(self.projectors.iter_mut()) {
            p.kill();
        }
    }
}

impl Deployment {
    async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("chronicle-deployment-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .tempdir()
            .unwrap();
        let pg = start_postgres(&dir.path().join("postgres")).await;
        let pg_port = pg.port();
        embedded::create_database_if_missing(&pg.url("postgres"), embedded::DATABASE)
            .await
            .unwrap();
        let url = pg.url(embedded::DATABASE);
        // The compose file's migration step, before anything else starts.
        let migrated = chronicle(&url, dir.path()).arg("migrate").status().unwrap();
        assert!(migrated.success(), "chronicle migrate: {migrated}");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        let mut deployment = Self {
            dir,
            pg: Some(pg),
            pg_port,
            url,
            pool,
            apis: Vec::new(),
            projectors: Vec::new(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        };
        for i in 0..APIS {
            let api = deployment.spawn_api(&format!("api-{}", letter(i)));
            deployment.apis.push(api);
        }
        // projector-a takes every lease; the others stand by.
        let first = deployment.spawn_projector("projector-a");
        let owner = format!("projector-a:{}", first.pid());
        deployment.projectors.push(first);
        deployment.wait_ready(Role::Projector, 0).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let rows = deployment.status().await;
            if rows
                .iter()
                .all(|r| r.owner.as_deref() == Some(owner.as_str()))
            {
                break;
            }
            assert!(Instant::now() < deadline, "projector-a leases: {rows:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for i in 1..PROJECTORS {
            let projector = deployment.spawn_projector(&format!("projector-{}", letter(i)));
            deployment.projectors.push(projector);
            deployment.wait_ready(Role::Projector, i).await;
        }
        for i in 0..APIS {
            deployment.wait_ready(Role::Api, i).await;
        }
        deployment
    }

    fn spawn_api(&self, name: &str) -> Process {
        let port = free_port();
        let log = self.dir.path().join(format!("{name}.log"));
        let child = chronicle(&self.url, self.dir.path())
            .arg("serve")
            .env("CHRONICLE_LISTEN", format!("127.0.0.1:{port}"))
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Process {
            name: name.into(),
            port,
            child,
            log,
        }
    }

    fn spawn_projector(&self, name: &str) -> Process {
        let port = free_port();
        let log = self.dir.path().join(format!("{name}.log"));
        let child = chronicle(&self.url, self.dir.path())
            .arg("project")
            .env("CHRONICLE_METRICS_LISTEN", format!("127.0.0.1:{port}"))
            .env("HOSTNAME", name)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Process {
            name: name.into(),
            port,
            child,
            log,
        }
    }

    fn process(&mut self, role: Role, i: usize) -> &mut Process {
        match role {
            Role::Api => &mut self.apis[i],
            Role::Projector => &mut self.projectors[i],
        }
    }

    /// Polls `/readyz` of a process until it answers 200.
    async fn wait_ready(&mut self, role: Role, i: usize) {
        let client = self.client.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let p = self.process(role, i);
            assert!(p.alive(), "{} exited", p.name);
            let url = p.url("/readyz");
            if let Ok(r) = client.get(&url).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{url} never answered 200");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every projection of the binary (the search index included) with its
    /// status.
    async fn status(&self) -> Vec<chronicle_projections::status::ProjectionStatus> {
        let all = every_projection(&self.pool);
        chronicle_projections::status::status_of(&self.pool, &chronicle_api::projection_names(&all))
            .await
            .unwrap()
    }

    async fn head(&self) -> u64 {
        sqlx::query_scalar::<_, i64>("SELECT coalesce(max(position), 0) FROM events")
            .fetch_one(&self.pool)
            .await
            .unwrap() as u64
    }

    /// Polls until every projection has applied everything up to `head`
    /// and is running; returns the statuses.
    async fn caught_up(
        &self,
        head: u64,
        within: Duration,
    ) -> Vec<chronicle_projections::status::ProjectionStatus> {
        let deadline = Instant::now() + within;
        loop {
            let rows = self.status().await;
            if rows
                .iter()
                .all(|r| r.position >= head && r.state == "running")
            {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "projections did not reach {head} within {within:?}: {:?}",
                rows.iter()
                    .filter(|r| r.position < head || r.state != "running")
                    .map(|r| (&r.name, r.position, &r.state, &r.owner))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The read models hold each stored ticket and comment exactly once.
    async fn assert_applied_once(&self) {
        let (opened, commented): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE event_type = 'ticket.opened'), \
                    count(*) FILTER (WHERE event_type = 'ticket.commented') FROM events",
        )
        .fetch_one(&self.pool)
        .await
        .unwrap();
        let (tickets, comments, comment_rows): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(comment_count), 0), \
                    (SELECT count(*) FROM read.ticket_comments) FROM read.tickets",
        )
        .fetch_one(&self.pool)
        .await
        .unwrap();
        assert!(opened > 0 && commented > 0);
        assert_eq!(tickets, opened, "one row per ticket opened");
        assert_eq!(comments, commented, "each comment counted once");
        assert_eq!(comment_rows, commented, "one row per comment");
    }

    /// The value of an unlabelled gauge on a process's `/metrics`.
    async fn gauge(&self, process: &Process, name: &str) -> Option<f64> {
        let text = self
            .client
            .get(process.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }
}

#[derive(Clone, Copy)]
enum Role {
    Api,
    Projector,
}

fn letter(i: usize) -> char {
    (b'a' + i as u8) as char
}

async fn start_postgres(dir: &Path) -> EmbeddedPostgres {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir))
        .await
        .unwrap()
        .unwrap()
}

/// `chronicle` with the deployment's shared settings (the compose file's
/// `x-chronicle-env`) and its shared data directory (the `chronicle-data`
/// volume: the search index one projector writes and the APIs read).
fn chronicle(url: &str, dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chronicle"));
    command
        .env("DATABASE_URL", url)
        .env("CHRONICLE_DATA_DIR", dir.join("data"))
        .env("CHRONICLE_JWT_SECRET", SECRET)
        .env("CHRONICLE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("CHRONICLE_AUDIT_SIGNING_KEY", "5e".repeat(32))
        .env("CHRONICLE_RATE_LIMIT", "100000000")
        .env("CHRONICLE_DB_POOL", "8")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

fn every_projection(pool: &PgPool) -> Vec<Arc<dyn chronicle_projections::Projection>> {
    chronicle_api::every_projection(
        Arc::new(chronicle_store::postgres::PgEventStore::new(pool.clone())),
        Arc::new(chronicle_projections::clock::SystemClock),
        chronicle_projections::audit::AuditKey::from_seed([0x5e; 32]),
    )
}

/// What an API acknowledged: the stream, its version and the event's
/// position.
#[derive(Debug, Clone)]
struct Ack {
    id: String,
    version: i64,
    position: i64,
}

/// A customer who opens tickets and comments on them through one API.
struct Customer {
    token: String,
    base: String,
    client: reqwest::Client,
    ticket: Option<String>,
}

impl Customer {
    fn new(client: &reqwest::Client, api: &Process) -> Self {
        Self {
            token: token(TENANT, &Uuid::now_v7().to_string(), &["customer"]),
            base: api.url(""),
            client: client.clone(),
            ticket: None,
        }
    }

    /// Opens a ticket first, then comments on it (a new ticket every ten
    /// comments). `Ok` with what was acknowledged, `Err` with what went
    /// wrong (a status or a transport error).
    async fn act(&mut self, n: usize) -> Result<Ack, String> {
        let (path, body) = match &self.ticket {
            Some(id) if !n.is_multiple_of(10) => (
                format!("/api/v1/tickets/{id}/comments"),
                json!({ "body": format!("comment {n}") }),
            ),
            _ => (
                "/api/v1/tickets".to_owned(),
                json!({
                    "contact": { "name": "Ann Customer", "email": "ann@example.com" },
                    "product": "fibre", "category": "outage", "priority": "P4",
                    "required_skill": "networking",
                    "title": format!("Outage {n}"), "description": "Down since the storm."
                }),
            ),
        };
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| format!("{path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {body}"));
        }
        let ack = Ack {
            id: body["id"].as_str().unwrap().to_owned(),
            version: body["version"].as_i64().unwrap(),
            position: body["position"].as_i64().unwrap(),
        };
        self.ticket = Some(ack.id.clone());
        Ok(ack)
    }
}

/// Clients sending commands in the background until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Ack>>>,
    errors: Arc<Mutex<Vec<String>>>,
    sent: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// One client per API in `targets`, each `per_target` times.
    fn start(client: &reqwest::Client, targets: &[&Process], per_target: usize) -> Self {
        let load = Self {
            stop: Arc::default(),
            acks: Arc::default(),
            errors: Arc::default(),
            sent: Arc::default(),
            tasks: Vec::new(),
        };
        let mut tasks = Vec::new();
        for target in targets {
            for _ in 0..per_target {
                let mut customer = Customer::new(client, target);
                let (stop, acks, errors, sent) = (
                    load.stop.clone(),
                    load.acks.clone(),
                    load.errors.clone(),
                    load.sent.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let outcome = customer.act(n).await;
                        sent.fetch_add(1, Ordering::Relaxed);
                        match outcome {
                            Ok(ack) => acks.lock().unwrap().push(ack),
                            Err(e) => {
                                errors.lock().unwrap().push(e);
                                // Not a busy loop while a server is down.
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                        n += 1;
                    }
                }));
            }
        }
        Self { tasks, ..load }
    }

    fn acked(&self) -> usize {
        self.acks.lock().unwrap().len()
    }

    fn failed(&self) -> usize {
        self.errors.lock().unwrap().len()
    }

    /// Polls until `done` holds for this load.
    async fn until(&self, what: &str, within: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?} ({} acknowledged, {} failed; last errors {:?})",
                self.acked(),
                self.failed(),
                self.errors
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) -> (Vec<Ack>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let acks = std::mem::take(&mut *self.acks.lock().unwrap());
        let errors = std::mem::take(&mut *self.errors.lock().unwrap());
        (acks, errors)
    }
}

/// Services of `ops/compose.yaml`: `postgres`, `chronicle <subcommand>`
/// for the services of the Chronicle image, and the others by name.
fn compose_topology() -> BTreeMap<String, usize> {
    use yaml_rust2::Yaml;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/compose.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let services = docs[0]["services"].as_hash().expect("services");
    let mut by_command = BTreeMap::new();
    for (name, service) in services {
        // A key of the service, or of what it merges in (`<<: *anchor`;
        // the parser leaves merge keys to us).
        let field = |key: &str| -> Yaml {
            match &service[key] {
                Yaml::BadValue => service["<<"][key].clone(),
                value => value.clone(),
            }
        };
        let image = field("image").as_str().unwrap_or_default().to_owned();
        let command = match field("command") {
            Yaml::Array(a) => a.first().and_then(|c| c.as_str()).map(str::to_owned),
            Yaml::String(s) => s.split_whitespace().next().map(str::to_owned),
            _ => None,
        };
        let key = if image.contains("/postgres:") || image.starts_with("postgres:") {
            "postgres".to_owned()
        } else if image.contains("chronicle") {
            format!("chronicle {}", command.as_deref().unwrap_or("serve"))
        } else {
            name.as_str().unwrap().to_owned()
        };
        *by_command.entry(key).or_insert(0) += 1;
    }
    by_command
}

#[test]
fn this_test_plays_the_processes_of_the_compose_file() {
    let topology = compose_topology();
    assert_eq!(topology.get("postgres"), Some(&1), "{topology:?}");
    assert_eq!(topology.get("chronicle migrate"), Some(&1), "{topology:?}");
    assert_eq!(topology.get("chronicle serve"), Some(&APIS), "{topology:?}");
    assert_eq!(
        topology.get("chronicle project"),
        Some(&PROJECTORS),
        "{topology:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_compose_topology_survives_killed_processes_and_a_database_restart() {
    let started = Instant::now();
    let mut d = Deployment::start().await;
    eprintln!("deployment up in {:.1} s", started.elapsed().as_secs_f64());
    let client = d.client.clone();

    // 1. Load through both APIs.
    let load = Load::start(&client, &[&d.apis[0], &d.apis[1]], 2);
    load.until("load through both APIs", Duration::from_secs(30), |l| {
        l.acked() >= 120
    })
    .await;
    let (acks, errors) = load.stop().await;
    assert!(errors.is_empty(), "{errors:?}");
    let head = d.head().await;
    let rows = d.caught_up(head, Duration::from_secs(30)).await;
    d.assert_applied_once().await;
    assert_events_exist(&d.pool, &acks).await;

    // 2. Kill the projector holding the leases: all of them.
    let owner = |rows: &[chronicle_projections::status::ProjectionStatus], name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.owner.clone())
            .unwrap_or_default()
    };
    let holder = owner(&rows, "tickets");
    let victim = d
        .projectors
        .iter()
        .position(|p| holder == format!("{}:{}", p.name, p.pid()))
        .unwrap_or_else(|| panic!("tickets is held by {holder:?}"));
    let survivor = 1 - victim;
    let survivor_owner = format!(
        "{}:{}",
        d.projectors[survivor].name,
        d.projectors[survivor].pid()
    );
    let held: Vec<String> = rows
        .iter()
        .filter(|r| r.owner.as_deref() == Some(holder.as_str()))
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(held.len(), rows.len(), "{holder} holds every lease");
    d.projectors[victim].kill();
    let killed = Instant::now();
    let load = Load::start(&client, &[&d.apis[0], &d.apis[1]], 1);
    load.until("load after the kill", Duration::from_secs(10), |l| {
        l.acked() >= 20
    })
    .await;
    let (acks, errors) = load.stop().await;
    assert!(errors.is_empty(), "{errors:?}");
    let head = d.head().await;
    let deadline = killed + Duration::from_secs(10);
    let took = loop {
        let rows = d.status().await;
        let moved = held.iter().all(|name| owner(&rows, name) == survivor_owner);
        if moved
            && rows
                .iter()
                .all(|r| r.position >= head && r.state == "running")
        {
            break killed.elapsed();
        }
        assert!(Instant::now() < deadline, "no takeover: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "{} projections taken over and caught up in {:.2} s",
        held.len(),
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(5), "takeover took {took:?}");
    d.assert_applied_once().await;
    assert_events_exist(&d.pool, &acks).await;
    // The restart policy brings it back, as a standby.
    let name = d.projectors[victim].name.clone();
    d.projectors[victim] = d.spawn_projector(&name);
    d.wait_ready(Role::Projector, victim).await;

    // 3. Kill one API while a client keeps sending to the other.
    let load = Load::start(&client, &[&d.apis[1]], 2);
    load.until("load on api-b", Duration::from_secs(10), |l| {
        l.acked() >= 20
    })
    .await;
    d.apis[0].kill();
    let refused = client.get(d.apis[0].url("/healthz")).send().await;
    assert!(refused.is_err(), "api-a still answers");
    let before = load.acked();
    load.until(
        "load on api-b after api-a died",
        Duration::from_secs(10),
        |l| l.acked() >= before + 40,
    )
    .await;
    let (acks, errors) = load.stop().await;
    assert!(errors.is_empty(), "requests to api-b failed: {errors:?}");
    assert_events_exist(&d.pool, &acks).await;
    let name = d.apis[0].name.clone();
    d.apis[0] = d.spawn_api(&name);
    d.wait_ready(Role::Api, 0).await;

    // 4. Restart PostgreSQL under load.
    let load = Load::start(&client, &[&d.apis[0], &d.apis[1]], 2);
    load.until("load before the restart", Duration::from_secs(10), |l| {
        l.acked() >= 40
    })
    .await;
    let pg = d.pg.take().unwrap();
    tokio::task::spawn_blocking(move || pg.stop())
        .await
        .unwrap();
    let stopped = Instant::now();
    let failed_before = load.failed();
    load.until("errors during the outage", Duration::from_secs(15), |l| {
        l.failed() > failed_before
    })
    .await;
    // The processes say so on /metrics (the database-down alert).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let api = d.gauge(&d.apis[1], "chronicle_database_up").await;
        let projector = d.gauge(&d.projectors[0], "chronicle_database_up").await;
        if api == Some(0.0) && projector == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chronicle_database_up: api {api:?}, projector {projector:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pg = start_postgres(&d.dir.path().join("postgres")).await;
    assert_eq!(pg.port(), d.pg_port, "restarted on its port");
    d.pg = Some(pg);
    let down = stopped.elapsed();
    let acked = load.acked();
    load.until("recovery after the restart", Duration::from_secs(30), |l| {
        l.acked() >= acked + 60
    })
    .await;
    let recovered = stopped.elapsed();
    let (acks, errors) = load.stop().await;
    eprintln!(
        "database down {:.1} s, clients served again after {:.1} s: {} acknowledged, {} failed",
        down.as_secs_f64(),
        recovered.as_secs_f64(),
        acks.len(),
        errors.len()
    );
    assert!(!errors.is_empty(), "the outage was seen by clients");
    // Every acknowledged command's event is in the log.
    assert_events_exist(&d.pool, &acks).await;
    // Every process came back by itself.
    for i in 0..APIS {
        d.wait_ready(Role::Api, i).await;
    }
    for i in 0..PROJECTORS {
        d.wait_ready(Role::Projector, i).await;
    }
    let head = d.head().await;
    d.caught_up(head, Duration::from_secs(30)).await;
    d.assert_applied_once().await;
    // And say so (the probe runs every 2 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    for p in d.apis.iter().chain(&d.projectors) {
        loop {
            let up = d.gauge(p, "chronicle_database_up").await;
            if up == Some(1.0) {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {up:?}", p.name);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!("whole test {:.1} s", started.elapsed().as_secs_f64());
}

/// Each acknowledged command's event is stored at the version and
/// position the API answered.
async fn assert_events_exist(pool: &PgPool, acks: &[Ack]) {
    assert!(!acks.is_empty());
    let ids: Vec<String> = acks.iter().map(|a| a.id.clone()).collect();
    let versions: Vec<i64> = acks.iter().map(|a| a.version).collect();
    let positions: Vec<i64> = acks.iter().map(|a| a.position).collect();
    let missing: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT a.id, a.version, a.position \
           FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS a(id, version, position) \
          WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = a.id \
                              AND e.stream_version = a.version AND e.position = a.position)",
    )
    .bind(&ids)
    .bind(&versions)
    .bind(&positions)
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events are not in the log: {:?}",
        missing.len(),
        acks.len(),
        &missing[..missing.len().min(5)]
    );
}
