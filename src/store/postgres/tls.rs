//! TLS for PostgreSQL connections (rustls), as libpq's `sslmode` and `sslrootcert` ask.
//!
//! tokio-postgres knows `sslmode=disable|prefer|require` only, and only whether to encrypt; the
//! rest of libpq's meaning is here. In a URL's query:
//! - `disable`: no TLS. `allow`, `prefer` (the default): TLS when the server offers it, else
//!   plain. `require`: TLS or no connection. These three do not verify the server's certificate,
//!   as in libpq — unless `sslrootcert` names a CA file, which they then verify against.
//! - `verify-ca`, `verify-full`: TLS, and the certificate must chain to `sslrootcert` (a PEM file)
//!   or, without it, to the public web's roots (webpki-roots) and name the host. (libpq's
//!   `verify-ca` skips the host name; here both check it, which is stricter.)
//!
//! The key=value form (`host=… sslmode=require`) goes to tokio-postgres as it is.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PostgresError;

/// What the URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tls {
    mode: Mode,
    root_cert: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    Verify,
}

/// Parses the database URL: tokio-postgres's config, and the TLS it asks for.
pub(super) fn parse(url: &str) -> Result<(Config, Tls), PostgresError> {
    let invalid = |message: String| PostgresError::Url(message);
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !is_url {
        let config: Config = url.parse().map_err(|e: tokio_postgres::Error| invalid(e.to_string()))?;
        let mode = match config.get_ssl_mode() {
            SslMode::Disable => Mode::Disable,
            SslMode::Require => Mode::Require,
            _ => Mode::Prefer,
        };
        return Ok((config, Tls { mode, root_cert: None }));
    }
    // The URL itself is never shown: it may hold the password. Its query is read here (not the
    // whole URL: libpq's `postgresql:///name?host=/run/postgresql` has no host part, which a URL
    // parser refuses), and what tokio-postgres does not know is taken out.
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut tls = Tls { mode: Mode::Prefer, root_cert: None };
    let mut kept = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "sslmode" => {
                tls.mode = match value.as_ref() {
                    "disable" => Mode::Disable,
                    "allow" | "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" | "verify-full" => Mode::Verify,
                    other => {
                        return Err(invalid(format!(
                    "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )))
                    }
                }
            }
            "sslrootcert" => tls.root_cert = Some(PathBuf::from(value.as_ref())),
            _ => kept.push((key.into_owned(), value.into_owned())),
        }
    }
    let parsed = match kept.is_empty() {
        true => base.to_owned(),
        false => format!(
            "{base}?{}",
            url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&kept).finish()
        ),
    };
    let mut config: Config =
        parsed.as_str().parse().map_err(|e: tokio_postgres::Error| invalid(e.to_string()))?;
    config.ssl_mode(match tls.mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::Verify => SslMode::Require,
    });
    Ok((config, tls))
}

impl Tls {
    /// The rustls connector for this mode (also used for `disable`, where it is never asked to
    /// connect).
    pub(super) fn connector(&self, database: &str) -> Result<MakeRustlsConnect, PostgresError> {
        let failed = |problem: String| PostgresError::Tls { database: database.to_owned(), problem };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| failed(e.to_string()))?;
        let roots = match &self.root_cert {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                let certificates = CertificateDer::pem_file_iter(path)
                    .map_err(|e| failed(format!("sslrootcert {}: {e}", path.display())))?;
                for certificate in certificates {
                    let certificate =
                        certificate.map_err(|e| failed(format!("sslrootcert {}: {e}", path.display())))?;
                    roots
                        .add(certificate)
                        .map_err(|e| failed(format!("sslrootcert {}: {e}", path.display())))?;
                }
                Some(roots)
            }
            None if self.mode == Mode::Verify => {
                Some(rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() })
            }
            None => None,
        };
        let config = match roots {
            Some(roots) => builder.with_root_certificates(roots).with_no_client_auth(),
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }
}

/// libpq's `prefer`/`require` without a root certificate: the connection is encrypted, the
/// handshake's signatures are checked, the certificate's issuer and name are not.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, signature, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, signature, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_ssl_parameters_are_taken_out_of_the_url() {
        let (config, tls) =
            parse("postgresql://feedmill:pw@db.example/news?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x")
                .unwrap();
        assert_eq!(tls, Tls { mode: Mode::Verify, root_cert: Some(PathBuf::from("/etc/ca.pem")) });
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert_eq!(config.get_application_name(), Some("x"));
        assert_eq!(parse("postgresql://db.example/news").unwrap().1.mode, Mode::Prefer);
        assert_eq!(
            parse("postgres://db.example/news?sslmode=disable").unwrap().0.get_ssl_mode(),
            SslMode::Disable
        );
        assert_eq!(parse("host=db.example sslmode=require").unwrap().1.mode, Mode::Require);
        let error =
            parse("postgresql://feedmill:s3cret@db.example/news?sslmode=sometimes").unwrap_err().to_string();
        assert!(error.contains("sslmode `sometimes`") && !error.contains("s3cret"), "{error}");
        // A Unix socket, libpq's way: no host part, the socket's folder in `host`.
        let (config, _) = parse("postgresql://feedmill@/news?host=/run/postgresql&sslmode=disable").unwrap();
        assert_eq!(config.get_hosts(), [tokio_postgres::config::Host::Unix("/run/postgresql".into())]);
        assert_eq!(super::super::describe(&config), "feedmill@/run/postgresql:5432/news");
    }
}
