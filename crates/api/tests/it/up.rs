//! `chronicle up` with no DATABASE_URL: starts its own PostgreSQL under the
//! data directory, becomes ready, and stops everything on SIGTERM.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ready(port: u16, child: &mut std::process::Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("chronicle up exited early with {status}");
        }
        let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let req = "GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            let mut resp = String::new();
            s.write_all(req.as_bytes()).is_ok()
                && s.read_to_string(&mut resp).is_ok()
                && resp.starts_with("HTTP/1.1 200")
        });
        if ok {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn run_up(data_dir: &Path, port: u16) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .arg("up")
        .env_remove("DATABASE_URL")
        .env("CHRONICLE_DATA_DIR", data_dir)
        .env("CHRONICLE_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

fn postgres_running(data_dir: &Path) -> bool {
    let pid_file = data_dir.join("postgres/data/postmaster.pid");
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return false;
    };
    let pid: i32 = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn up_runs_the_system_on_an_embedded_database_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // Twice: the second start reuses the initialised cluster.
    for round in 0..2 {
        let port = free_port();
        let mut child = run_up(&data_dir, port);
        assert!(
            wait_ready(port, &mut child),
            "round {round}: /readyz never answered 200"
        );
        assert!(postgres_running(&data_dir), "the embedded PostgreSQL runs");
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "round {round}: exit status {status}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while postgres_running(&data_dir) {
            assert!(
                Instant::now() < deadline,
                "the embedded PostgreSQL outlived chronicle up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let password = data_dir.join("postgres/password");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(password).unwrap().permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o600,
        "the generated database password is private"
    );
}
