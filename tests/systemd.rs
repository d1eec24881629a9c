//! The shipped systemd unit: hardened as promised, and accepted by `systemd-analyze verify`.

use std::path::Path;
use std::process::Command;

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
