//! The shipped systemd unit: hardened as promised, accepted by `systemd-analyze verify`; and the
//! daemon's side of `Type=notify` against a fake notification socket.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http_get, served_at, Workspace};

const UNIT: &str = include_str!("../systemd/feedmill.service");

#[test]
fn unit_runs_the_daemon_hardened() {
    for line in [
        "ExecStart=/usr/local/bin/feedmill run -c /etc/feedmill/feedmill.toml",
        "DynamicUser=yes",
        "StateDirectory=feedmill",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "Type=notify",
        "WatchdogSec=60s",
    ] {
        assert!(UNIT.lines().any(|l| l.trim() == line), "unit lacks `{line}`");
    }
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    // Point ExecStart at the binary under test, since /usr/local/bin/feedmill need not exist here.
    let dir = tempfile::tempdir().unwrap();
    let unit = UNIT.replace("/usr/local/bin/feedmill", env!("CARGO_BIN_EXE_feedmill"));
    let path = dir.path().join("feedmill.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new("systemd-analyze").arg("verify").arg(Path::new(&path)).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "systemd-analyze verify: {stderr}");
}

#[test]
fn daemon_notifies_ready_status_watchdog_and_stopping() {
    let work = Workspace::new();
    let socket_path = work.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let port = free_port();
    let config = work.config(&served_at(port));
    // systemd sets WATCHDOG_PID to the service's pid: `exec` keeps the shell's.
    let child = Command::new("sh")
        .current_dir(work.path(""))
        .arg("-c")
        .arg(format!("WATCHDOG_PID=$$ exec {} run -c {}", env!("CARGO_BIN_EXE_feedmill"), config.display()))
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "300000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut messages = String::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(messages.contains("READY=1") && messages.matches("WATCHDOG=1").count() >= 2) {
        assert!(Instant::now() < deadline, "got only: {messages:?}");
        if let Ok(n) = socket.recv(&mut buffer) {
            messages.push_str(&String::from_utf8_lossy(&buffer[..n]));
            messages.push('\n');
        }
    }
    assert!(messages.contains("STATUS=serving; 0 sources"), "{messages}");
    // Ready means serving.
    assert_eq!(http_get(&format!("http://127.0.0.1:{port}/healthz")).unwrap().0, 200);
    Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !messages.contains("STOPPING=1") {
        assert!(Instant::now() < deadline, "no STOPPING=1: {messages:?}");
        if let Ok(n) = socket.recv(&mut buffer) {
            messages.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    }
    assert!(child.0.wait().unwrap().success());
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
