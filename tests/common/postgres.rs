//! A real PostgreSQL server for a test (Debian's `postgresql` package): `initdb` in a temporary
//! directory, started on a free port on 127.0.0.1 with its socket in that directory, stopped when
//! dropped. initdb refuses to run as root, so when the tests run as root the server runs as the
//! `postgres` user the package creates. Without PostgreSQL, `start` says so and the test skips.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl Postgres {
    /// A fresh server, or None (with a message) where PostgreSQL is not installed.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = server_bin() else {
            eprintln!("skipped: PostgreSQL is not installed (Debian: apt-get install postgresql)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let server = Postgres { dir, bin, port: super::free_port() };
        if running_as_root() {
            let owner = Command::new("chown").arg("postgres:").arg(server.dir.path()).status().unwrap();
            assert!(owner.success(), "cannot hand the server's directory to the postgres user");
        }
        let data = server.path("data");
        server.run("initdb", &["-D", &data, "-U", "feedmill", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            server.port,
            server.dir.path().display()
        );
        server.run("pg_ctl", &["-D", &data, "-l", &server.path("log"), "-o", &options, "-w", "start"]);
        Some(server)
    }

    /// A new, empty database on this server; its URL.
    pub fn create_database(&self, name: &str) -> String {
        let port = self.port.to_string();
        self.run("createdb", &["-h", "127.0.0.1", "-p", &port, "-U", "feedmill", name]);
        self.url(name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgresql://feedmill@127.0.0.1:{}/{database}", self.port)
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// One of the server's programs, run as `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Runs one of the server's programs; panics with its output and the server log if it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let output = self.command(program).args(args).output().unwrap();
        let log = std::fs::read_to_string(self.path("log")).unwrap_or_default();
        assert!(
            output.status.success(),
            "{program} {args:?}: {}{}\n{log}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.path("data");
        let _ = self.command("pg_ctl").args(["-D", &data, "-m", "immediate", "stop"]).output();
    }
}

/// The newest installed server's programs (`/usr/lib/postgresql/VERSION/bin`).
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    Path::new("/proc/self").metadata().is_ok_and(|m| m.uid() == 0)
}
