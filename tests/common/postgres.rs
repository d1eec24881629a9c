//! A real PostgreSQL server for a test (Debian's `postgresql` package): `initdb` in a temporary
//! directory, started on a free port on 127.0.0.1 with its socket in that directory, stopped when
//! dropped; with TLS on request, its certificate (for `localhost` and 127.0.0.1) signed by a test
//! CA made with `openssl` in the same directory. initdb refuses to run as root, so when the tests run as root the server runs as the
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
        Postgres::start_with(false)
    }

    /// A fresh server that offers TLS, or None (with a message) where PostgreSQL or openssl is
    /// not installed. Its CA's certificate is at [`Postgres::ca_file`].
    pub fn start_with_tls() -> Option<Postgres> {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("skipped: openssl is not installed (Debian: apt-get install openssl)");
            return None;
        }
        Postgres::start_with(true)
    }

    pub fn ca_file(&self) -> String {
        self.path("ca.pem")
    }

    fn start_with(tls: bool) -> Option<Postgres> {
        let Some(bin) = server_bin() else {
            eprintln!("skipped: PostgreSQL is not installed (Debian: apt-get install postgresql)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let server = Postgres { dir, bin, port: super::free_port() };
        if tls {
            server.make_certificates();
        }
        if running_as_root() {
            let owner =
                Command::new("chown").arg("-R").arg("postgres:").arg(server.dir.path()).status().unwrap();
            assert!(owner.success(), "cannot hand the server's directory to the postgres user");
        }
        let data = server.path("data");
        server.run("initdb", &["-D", &data, "-U", "feedmill", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            server.port,
            server.dir.path().display()
        );
        if tls {
            options += &format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                server.path("server.pem"),
                server.path("server.key")
            );
        }
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

    /// A test CA and the server's certificate and key (P-256), signed by it.
    fn make_certificates(&self) {
        let dir = self.dir.path();
        std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        for args in [
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=feedmill test CA"],
            ]
            .concat(),
            &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]]
                .concat(),
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ][..]
                .to_vec(),
        ] {
            let output = Command::new("openssl").current_dir(dir).args(args).output().unwrap();
            assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        // The server refuses a key others can read.
        std::fs::set_permissions(dir.join("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
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
