//! The embedded default database: a private PostgreSQL under a directory of
//! ours, started from the installed server binaries.
//!
//! `initdb` runs once; each start runs `postgres` as a child that stops when
//! [`EmbeddedPostgres`] is dropped, and also when this process dies (the
//! child gets SIGINT, a fast clean shutdown, from the kernel). PostgreSQL
//! refuses to run as root, so as root the server runs as the unprivileged
//! `postgres` user (or `nobody`).

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The superuser and the default database of the embedded cluster.
pub const USER: &str = "chronicle";
pub const DATABASE: &str = "chronicle";

/// Why the embedded database could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no PostgreSQL server binaries found (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin: \
         install them (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL"
    )]
    BinariesNotFound,
    #[error(
        "running as root and no unprivileged user (postgres or nobody) exists to run PostgreSQL as"
    )]
    NoUnprivilegedUser,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed: {log}")]
    CommandFailed { program: String, log: String },
    #[error("PostgreSQL did not become ready within {0:?}; its log: {1}")]
    NotReady(Duration, String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EmbeddedError + '_ {
    move |source| EmbeddedError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The server binaries to use.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

impl Binaries {
    /// Looks in `PATH`, then in the usual versioned install directories,
    /// newest version first.
    pub fn find() -> Result<Self, EmbeddedError> {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        for pattern_root in [
            "/usr/lib/postgresql",
            "/usr/local/lib/postgresql",
            "/usr/pgsql",
        ] {
            let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(pattern_root)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    Some((v, e.path().join("bin")))
                })
                .collect();
            versions.sort_by_key(|v| std::cmp::Reverse(v.0));
            dirs.extend(versions.into_iter().map(|(_, p)| p));
        }
        dirs.push("/usr/local/pgsql/bin".into());
        for dir in dirs {
            let initdb = dir.join("initdb");
            let postgres = dir.join("postgres");
            if is_executable(&initdb) && is_executable(&postgres) {
                return Ok(Self {
                    initdb: fs::canonicalize(&initdb).unwrap_or(initdb),
                    postgres: fs::canonicalize(&postgres).unwrap_or(postgres),
                });
            }
        }
        Err(EmbeddedError::BinariesNotFound)
    }
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The account the server runs as.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn run_as() -> Result<Option<RunAs>, EmbeddedError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        let cname = CString::new(name).unwrap_or_default();
        // SAFETY: getpwnam returns a pointer into static storage or null; we
        // copy the two integers out before any other call.
        let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
        if !pw.is_null() {
            // SAFETY: checked non-null above.
            let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
            return Ok(Some(RunAs { uid, gid }));
        }
    }
    Err(EmbeddedError::NoUnprivilegedUser)
}

fn chown(path: &Path, who: Option<RunAs>) -> Result<(), EmbeddedError> {
    if let Some(who) = who {
        std::os::unix::fs::chown(path, Some(who.uid), Some(who.gid)).map_err(io(path))?;
    }
    Ok(())
}

/// A running private PostgreSQL. Dropping it stops the server.
pub struct EmbeddedPostgres {
    dir: PathBuf,
    port: u16,
    password: String,
    stop: Option<mpsc::Sender<()>>,
    done: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedPostgres {
    /// Starts the cluster kept in `dir` (created and initialised on first
    /// use), waits until it accepts connections, and makes sure the
    /// `chronicle` database exists.
    pub fn start(dir: &Path) -> Result<Self, EmbeddedError> {
        let binaries = Binaries::find()?;
        let who = run_as()?;
        fs::create_dir_all(dir).map_err(io(dir))?;
        let dir = fs::canonicalize(dir).map_err(io(dir))?;
        let data = dir.join("data");
        let password = Self::ensure_password(&dir)?;
        if !data.join("PG_VERSION").exists() {
            Self::initdb(&binaries, &dir, &data, &password, who)?;
        }

        let port_file = dir.join("port");
        let preferred = fs::read_to_string(&port_file)
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok());
        let mut last_error = None;
        for attempt in 0..3 {
            let port = match (attempt, preferred) {
                (0, Some(p)) if port_is_free(p) => p,
                _ => free_port().map_err(io(&dir))?,
            };
            match Self::launch(&binaries, &dir, &data, port, who) {
                Ok((stop, done)) => {
                    fs::write(&port_file, port.to_string()).map_err(io(&port_file))?;
                    let pg = Self {
                        dir,
                        port,
                        password,
                        stop: Some(stop),
                        done: Some(done),
                    };
                    return Ok(pg);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(EmbeddedError::BinariesNotFound))
    }

    fn ensure_password(dir: &Path) -> Result<String, EmbeddedError> {
        let file = dir.join("password");
        if let Ok(p) = fs::read_to_string(&file) {
            return Ok(p.trim().to_owned());
        }
        let password: String = {
            use rand::Rng;
            let mut rng = rand::thread_rng();
            (0..32)
                .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
                .collect()
        };
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, password.as_bytes()))
            .map_err(io(&file))?;
        Ok(password)
    }

    fn initdb(
        binaries: &Binaries,
        dir: &Path,
        data: &Path,
        password: &str,
        who: Option<RunAs>,
    ) -> Result<(), EmbeddedError> {
        fs::create_dir_all(data).map_err(io(data))?;
        fs::set_permissions(data, fs::Permissions::from_mode(0o700)).map_err(io(data))?;
        chown(data, who)?;
        // initdb reads the password from a file the server's user can read.
        let pwfile = dir.join("initdb.pw");
        fs::write(&pwfile, password).map_err(io(&pwfile))?;
        fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o600)).map_err(io(&pwfile))?;
        chown(&pwfile, who)?;
        let mut cmd = Command::new(&binaries.initdb);
        cmd.arg("-D")
            .arg(data)
            .args([
                "-U",
                USER,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .current_dir(dir);
        if let Some(who) = who {
            cmd.uid(who.uid).gid(who.gid);
        }
        let output = cmd.output().map_err(io(&binaries.initdb));
        let _ = fs::remove_file(&pwfile);
        let output = output?;
        if !output.status.success() {
            let _ = fs::remove_dir_all(data);
            return Err(EmbeddedError::CommandFailed {
                program: "initdb".into(),
                log: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(())
    }

    /// Starts `postgres` from a dedicated thread that lives as long as the
    /// server (the kernel's parent-death signal follows the spawning thread).
    #[allow(clippy::type_complexity)]
    fn launch(
        binaries: &Binaries,
        dir: &Path,
        data: &Path,
        port: u16,
        who: Option<RunAs>,
    ) -> Result<(mpsc::Sender<()>, std::thread::JoinHandle<()>), EmbeddedError> {
        let log_path = dir.join("postgres.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&binaries.postgres);
        cmd.arg("-D")
            .arg(data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .arg("-c")
            .arg(format!("unix_socket_directories={}", data.display()))
            .args(["-c", "max_connections=200"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io(&log_path))?)
            .stderr(log);
        if let Some(who) = who {
            cmd.uid(who.uid).gid(who.gid);
        }
        // SAFETY: prctl is async-signal-safe; it runs in the child between
        // fork and exec, after the user switch (which would clear it).
        unsafe {
            cmd.pre_exec(|| {
                // Own process group: a terminal's Ctrl-C reaches us, and we
                // stop the server after draining requests.
                libc::setpgid(0, 0);
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }

        let (started_tx, started_rx) = mpsc::channel::<Result<u32, std::io::Error>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let done = std::thread::Builder::new()
            .name("embedded-postgres".into())
            .spawn(move || supervise(cmd, started_tx, stop_rx))
            .map_err(io(dir))?;
        let pid = started_rx
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("supervisor thread died")))
            .map_err(io(&binaries.postgres))?;

        let deadline = Duration::from_secs(60);
        let start = Instant::now();
        loop {
            if TcpStream::connect_timeout(
                &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
                && Self::accepts_queries(data, port)
            {
                tracing::info!(port, pid, dir = %dir.display(), "embedded PostgreSQL is up");
                return Ok((stop_tx, done));
            }
            // SAFETY: kill with signal 0 only checks that the process exists.
            let alive = unsafe { libc::kill(pid as i32, 0) } == 0;
            if !alive || done.is_finished() || start.elapsed() > deadline {
                let _ = stop_tx.send(());
                let _ = done.join();
                let log = read_log_tail(&log_path, log_start);
                return Err(if alive {
                    EmbeddedError::NotReady(deadline, log)
                } else {
                    EmbeddedError::CommandFailed {
                        program: "postgres".into(),
                        log,
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server is past recovery when its pid file says "ready".
    fn accepts_queries(data: &Path, _port: u16) -> bool {
        fs::read_to_string(data.join("postmaster.pid"))
            .is_ok_and(|s| s.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the cluster.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A connection URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// Stops the server (fast shutdown) and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.join();
            tracing::info!("embedded PostgreSQL stopped");
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn supervise(
    mut cmd: Command,
    started: mpsc::Sender<Result<u32, std::io::Error>>,
    stop: mpsc::Receiver<()>,
) {
    let mut child: Child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let _ = started.send(Ok(child.id()));
    loop {
        match stop.recv_timeout(Duration::from_millis(200)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    tracing::error!(%status, "embedded PostgreSQL exited");
                    return;
                }
            }
        }
    }
    // SIGINT: fast shutdown (roll back sessions, checkpoint, exit).
    // SAFETY: sending a signal to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let _ = child.wait();
}

fn read_log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        use std::io::Seek;
        let _ = f.seek(std::io::SeekFrom::Start(from));
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Creates `database` on the server at `admin_url` unless it exists.
pub async fn create_database_if_missing(
    admin_url: &str,
    database: &str,
) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let quoted = database.replace('"', "\"\"");
        sqlx::query(&format!("CREATE DATABASE \"{quoted}\""))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await
}

/// Replaces the database name in a PostgreSQL URL, keeping its query.
pub fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_get_another_database() {
        use super::url_with_database as with;
        assert_eq!(with("postgres://u:p@h:5/a", "b"), "postgres://u:p@h:5/b");
        assert_eq!(
            with("postgres://h:5/a?sslmode=off", "b"),
            "postgres://h:5/b?sslmode=off"
        );
        assert_eq!(with("postgres://h:5", "b"), "postgres://h:5/b");
    }
}
