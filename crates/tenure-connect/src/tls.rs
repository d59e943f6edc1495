//! TLS for every connector: one way to build a rustls client configuration and one way to
//! explain a handshake that failed.
//!
//! All three connectors use rustls with the *ring* provider, named explicitly: the dependency
//! tree enables two providers (ldap3 brings ring, reqwest aws-lc-rs), and rustls refuses to pick
//! one by itself. The trust anchors are the PEM certificates in the target's `ca_file` when it
//! sets one (instead of the system's roots, so a private CA is trusted for that target only), and
//! the system's roots otherwise.
//!
//! Verification has three strengths ([`Verify`]): the chain and the server's name (the default
//! everywhere), the chain only (PostgreSQL's `verify-ca`), and nothing (`tls_verify = false`,
//! which the config loader warns about on every run). Turning verification off keeps the
//! handshake signatures checked, so the connection is still encrypted to *someone*.
//!
//! A refused certificate is a permanent error that says why ("not issued by a trusted CA",
//! "does not name this host", "is a CA certificate" — a self-signed `CA:TRUE` certificate given as
//! `ca_file`, which RFC 5280 path validation refuses as an end entity; a self-signed one without
//! `CA:TRUE` is its own trust anchor and works) and what to check; it never contains a secret, because nothing
//! the connector holds is part of a handshake error.

use crate::{ConnectorError, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::{Arc, LazyLock};

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// The chain up to a trusted CA, and that the certificate names the host connected to.
    Full,
    /// The chain only (PostgreSQL's `sslmode=verify-ca`).
    ChainOnly,
    /// Nothing (`tls_verify = false`).
    Off,
}

impl Verify {
    pub(crate) fn from_flag(verify: bool) -> Verify {
        if verify { Verify::Full } else { Verify::Off }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trust anchors, loaded once. Certificates the system store holds but rustls
/// cannot parse are skipped.
static SYSTEM_ROOTS: LazyLock<Arc<RootCertStore>> = LazyLock::new(|| {
    let mut store = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = store.add(cert);
    }
    Arc::new(store)
});

/// The trust anchors: the certificates in `ca_file`, or the system's.
fn roots(target: &str, key: &str, ca_file: Option<&str>) -> Result<Arc<RootCertStore>> {
    let Some(path) = ca_file else { return Ok(SYSTEM_ROOTS.clone()) };
    let unreadable = |why: String| ConnectorError::permanent(format!("target `{target}`: `{key}` `{path}`: {why}"));
    let text = std::fs::read(path).map_err(|e| unreadable(format!("cannot read it: {}", e.kind())))?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&text) {
        let cert = cert.map_err(|e| unreadable(format!("not a PEM certificate file: {e}")))?;
        store.add(cert).map_err(|e| unreadable(format!("holds a certificate that cannot be a trust anchor: {e}")))?;
    }
    if store.is_empty() {
        return Err(unreadable("holds no PEM certificates (`-----BEGIN CERTIFICATE-----`)".into()));
    }
    Ok(Arc::new(store))
}

/// A client configuration for `target`: trust `ca_file` (named by config key `key`, for
/// messages) or the system, and verify as `verify` says.
pub(crate) fn client_config(target: &str, key: &str, ca_file: Option<&str>, verify: Verify) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectorError::permanent(format!("target `{target}`: cannot set up TLS: {e}")))?;
    let config = match verify {
        Verify::Full => builder.with_root_certificates(roots(target, key, ca_file)?).with_no_client_auth(),
        Verify::ChainOnly => {
            let inner = WebPkiServerVerifier::builder_with_provider(roots(target, key, ca_file)?, provider)
                .build()
                .map_err(|e| ConnectorError::permanent(format!("target `{target}`: cannot set up TLS: {e}")))?;
            builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(inner))).with_no_client_auth()
        }
        Verify::Off => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Checks the chain but not the name.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Accepts any certificate; still checks that the handshake is signed by its key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// If `e` or one of its causes is a TLS failure, what it means for the person reading it, or
/// `None` when the error has nothing to do with TLS.
pub(crate) fn explain(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let found = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()?.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = found {
            return Some(describe(tls));
        }
        // `io::Error::source` skips the error it wraps, and hyper wraps an io::Error in another.
        cur = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

fn describe(e: &rustls::Error) -> String {
    let cert = |why: &str| format!("TLS handshake failed: the server's certificate {why}");
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                cert("is not issued by a trusted CA (set `ca_file` to the CA that issued it)")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                cert("does not name the host in the url (connect by a name the certificate lists)")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => cert("has expired"),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => cert("is not valid yet"),
            CertificateError::BadSignature => cert("has a bad signature"),
            CertificateError::Revoked => cert("is revoked"),
            CertificateError::Other(o) if matches!(o.0.downcast_ref(), Some(webpki::Error::CaUsedAsEndEntity)) => cert(
                "is a CA certificate (basic constraints `CA:TRUE`), which TLS never accepts as a server's own \
                     certificate: if `ca_file` holds the server's self-signed certificate (`openssl req -x509` marks \
                     it a CA unless told `-addext basicConstraints=critical,CA:FALSE`), either make it again without \
                     `CA:TRUE`, or issue the server a certificate from a CA and give `ca_file` the CA's certificate",
            ),
            other => cert(&format!("was refused ({other:?})")),
        },
        other => format!("TLS handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_that_hold_no_certificates_are_refused_with_the_key_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap_or_else(|e| panic!("{e}"));
        let path = empty.to_string_lossy().into_owned();
        let e = client_config("dir", "ca_file", Some(&path), Verify::Full).err().map(|e| e.message);
        assert_eq!(
            e,
            Some(format!(
                "target `dir`: `ca_file` `{path}`: holds no PEM certificates (`-----BEGIN CERTIFICATE-----`)"
            ))
        );
        let e = client_config("dir", "ca_file", Some("/nonexistent/ca.pem"), Verify::Full).err().map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some("target `dir`: `ca_file` `/nonexistent/ca.pem`: cannot read it: entity not found")
        );
        assert!(client_config("dir", "ca_file", None, Verify::Off).is_ok());
    }

    #[test]
    fn handshake_failures_are_explained_through_io_errors() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let text = explain(&io).unwrap_or_default();
        assert!(text.contains("not issued by a trusted CA") && text.contains("`ca_file`"), "{text}");
        let nested = std::io::Error::other(io);
        assert!(explain(&nested).is_some_and(|t| t.contains("not issued by a trusted CA")));
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(explain(&plain), None);
    }
}
