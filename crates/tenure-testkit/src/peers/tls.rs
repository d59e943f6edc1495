//! Throwaway TLS material for the peers, made with `rcgen`, and a TLS terminator for peers that
//! only speak plain TCP (scim2-server).
//!
//! [`TestCa::new`] makes a CA; [`TestCa::server`] issues it a server certificate for
//! `127.0.0.1` and `localhost` and writes `ca.pem`, `server.pem` and `server.key` (0600) into a
//! temp dir, for slapd (`TLSCACertificateFile`, ...), PostgreSQL (`ssl_cert_file`, ...) and the
//! terminator. A second `TestCa` is the "wrong CA" a client must refuse.
//!
//! [`TlsTerminator`] listens on a free loopback port, does the TLS handshake with the server
//! certificate (rustls, ring) and copies bytes both ways to a plain backend port, one task per
//! connection, on a runtime in its own thread, so the test kit's API stays synchronous. It is
//! part of the peer, not of the system under test: the client talks real TLS to a real server.

use super::free_port;
use anyhow::{Context, Result, anyhow};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate authority that exists only for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: tempfile::TempDir,
    ca_file: PathBuf,
}

/// A server certificate and key issued by a [`TestCa`], with the CA's certificate, as files.
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// The issuing CA's certificate (PEM): what a client is given as `ca_file`.
    pub ca_file: PathBuf,
    /// The server certificate (PEM).
    pub cert_file: PathBuf,
    /// The server's private key (PKCS #8 PEM), mode 0600.
    pub key_file: PathBuf,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    /// A new CA named `name`, its certificate written to [`TestCa::ca_file`].
    pub fn new(name: &str) -> Result<TestCa> {
        let mut params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
        params.distinguished_name.push(DnType::CommonName, format!("Tenure test CA {name}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().context("generating the CA key")?;
        let issuer = CertifiedIssuer::self_signed(params, key).context("signing the CA certificate")?;
        let dir = tempfile::Builder::new().prefix("tenure-ca-").tempdir().context("creating the CA's temp dir")?;
        let ca_file = dir.path().join("ca.pem");
        write_file(&ca_file, &issuer.pem(), 0o644)?;
        Ok(TestCa { issuer, dir, ca_file })
    }

    /// The CA certificate (PEM file).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Issues a server certificate for `127.0.0.1` and `localhost` (and `extra` names), written
    /// next to the CA certificate.
    pub fn server(&self, extra: &[&str]) -> Result<ServerCert> {
        let mut names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        names.extend(extra.iter().map(|s| s.to_string()));
        let mut params = CertificateParams::new(names).context("server certificate parameters")?;
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().context("generating the server key")?;
        let cert = params.signed_by(&key, &self.issuer).context("signing the server certificate")?;
        let n = std::fs::read_dir(self.dir.path()).map(|d| d.count()).unwrap_or(0);
        let cert_file = self.dir.path().join(format!("server{n}.pem"));
        let key_file = self.dir.path().join(format!("server{n}.key"));
        let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
        write_file(&cert_file, &cert_pem, 0o644)?;
        write_file(&key_file, &key_pem, 0o600)?;
        Ok(ServerCert { ca_file: self.ca_file.clone(), cert_file, key_file, cert_pem, key_pem })
    }
}

/// A self-signed server certificate for `127.0.0.1` and `localhost`, as an admin makes one by
/// hand: with `ca = true` it says `CA:TRUE` (what `openssl req -x509` writes by default), else it
/// has no basic constraints. Its `ca_file` is the certificate itself, what such an admin gives
/// a client as `ca_file`. The files live in `dir`.
pub fn self_signed(dir: &Path, ca: bool) -> Result<ServerCert> {
    self_signed_as(dir, ca, &["127.0.0.1", "localhost"], false)
}

/// A self-signed server certificate as [`self_signed`] makes, naming only `names`, and with
/// `expired` one whose validity ended in 2001.
pub fn self_signed_as(dir: &Path, ca: bool, names: &[&str], expired: bool) -> Result<ServerCert> {
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .context("self-signed certificate parameters")?;
    params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("localhost"));
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    }
    let key = KeyPair::generate().context("generating the key")?;
    let cert = params.self_signed(&key).context("signing the certificate")?;
    let tag =
        format!("{}-{}{}", if ca { "ca" } else { "leaf" }, names.join("-"), if expired { "-expired" } else { "" });
    let cert_file = dir.join(format!("self-signed-{tag}.pem"));
    let key_file = dir.join(format!("self-signed-{tag}.key"));
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    write_file(&cert_file, &cert_pem, 0o644)?;
    write_file(&key_file, &key_pem, 0o600)?;
    Ok(ServerCert { ca_file: cert_file.clone(), cert_file, key_file, cert_pem, key_pem })
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// A TLS front for a plain TCP server on `127.0.0.1`. Stops when dropped.
pub struct TlsTerminator {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsTerminator {
    /// Listens on a free loopback port with `cert` and forwards every connection to
    /// `127.0.0.1:backend`.
    pub fn start(cert: &ServerCert, backend: u16) -> Result<TlsTerminator> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).context("the server certificate")?];
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).context("the server key")?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("the server certificate and key")?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let port = free_port()?;
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", port)).with_context(|| format!("binding port {port}"))?;
        listener.set_nonblocking(true)?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("a runtime")?;
        let thread = std::thread::Builder::new()
            .name(format!("tls-terminator-{port}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                    loop {
                        let accepted = tokio::select! {
                            _ = &mut stopped => return,
                            a = listener.accept() => a,
                        };
                        let Ok((client, _)) = accepted else { continue };
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            // A client that refuses our certificate ends the handshake: nothing to do.
                            let Ok(mut tls) = acceptor.accept(client).await else { return };
                            let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await else {
                                return;
                            };
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                        });
                    }
                });
            })
            .map_err(|e| anyhow!("starting the TLS terminator thread: {e}"))?;
        Ok(TlsTerminator { port, stop: Some(stop), thread: Some(thread) })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
