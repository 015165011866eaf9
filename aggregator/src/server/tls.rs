//! TLS 1.3 for the gRPC listener, with rustls and its ring provider (the one
//! crypto provider of the workspace).
//!
//! The handshake is done here rather than by tonic so that the protocol
//! version can be pinned to 1.3 and a slow or broken handshake cannot hold
//! up the accept loop: each runs in its own task, under a deadline. Client
//! certificates are verified against the fleet CA when presented and are
//! optional at the TLS layer — a CLI may use a bearer token instead; the
//! per-call rules are in [`super::auth`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::conn::{self, Class, Conns, Guarded};
use super::throttle::{INTERVAL, Throttle};
use crate::metrics::Metrics;
use crate::warn_throttled;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's certificate, key and the CA its clients' certificates must
/// chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain of the server.
    pub cert: PathBuf,
    /// PEM private key of the server.
    pub key: PathBuf,
    /// PEM CA certificate(s) for client certificates.
    pub client_ca: PathBuf,
}

/// A TLS setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("TLS {what} {path}: {message}")]
pub struct TlsError {
    /// Which file.
    pub what: &'static str,
    /// Its path.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |message: String| TlsError {
        what,
        path: path.to_owned(),
        message,
    };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".to_owned()));
    }
    Ok(certs)
}

/// The rustls server configuration: TLS 1.3 only, HTTP/2, client
/// certificates verified against `client_ca` when presented.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs("certificate", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError {
        what: "key",
        path: files.key.clone(),
        message: e.to_string(),
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs("client CA", &files.client_ca)? {
        roots.add(ca).map_err(|e| TlsError {
            what: "client CA",
            path: files.client_ca.clone(),
            message: e.to_string(),
        })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError {
            what: "client CA",
            path: files.client_ca.clone(),
            message: e.to_string(),
        })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError {
            what: "configuration",
            path: files.cert.clone(),
            message: e.to_string(),
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError {
            what: "certificate and key",
            path: files.cert.clone(),
            message: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    // No session resumption. rustls' default keeps the last 256 sessions in
    // memory, two per connection, each with the client's certificate chain,
    // and nothing of ours would resume one: an agent holds one connection
    // for as long as the aggregator runs, and every CLI call is a new
    // process with an empty client cache. The cache only grew with every
    // query until it was full (about 0.35 MiB, measured for the soak of
    // docs/reliability.md). Without it every connection is a full handshake
    // that verifies the client's certificate again.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// TLS connections accepted on `listener`: each handshake runs in its own
/// task with a deadline, in a handshake slot of `conns`; then the connection
/// takes an established slot of its class (with a client certificate:
/// trusted; without: anonymous) or is closed. Failures are logged (with the
/// peer address, throttled) and dropped. Ends when the receiver is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    conns: Arc<Conns>,
    metrics: Arc<Metrics>,
) -> ReceiverStream<std::io::Result<Guarded<TlsStream<TcpStream>>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        let accept_failed = Throttle::new(INTERVAL);
        let failed = Arc::new(Throttle::new(INTERVAL));
        loop {
            let (tcp, addr) = conn::accept(&listener, &metrics, &accept_failed).await;
            if tx.is_closed() {
                return;
            }
            let Ok(handshake) = conns.handshake(addr) else {
                continue;
            };
            let (acceptor, tx, conns, failed) = (
                acceptor.clone(),
                tx.clone(),
                Arc::clone(&conns),
                Arc::clone(&failed),
            );
            tokio::spawn(async move {
                let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                drop(handshake);
                match outcome {
                    Ok(Ok(tls)) => {
                        let class = if tls.get_ref().1.peer_certificates().is_some() {
                            Class::Trusted
                        } else {
                            Class::Anonymous
                        };
                        if let Ok(slot) = conns.establish(addr, class) {
                            let _ = tx.send(Ok(conns.guard(tls, slot))).await;
                        }
                    }
                    Ok(Err(e)) => {
                        warn_throttled!(failed, peer = %addr, error = %e, "TLS handshake failed")
                    }
                    Err(_) => warn_throttled!(failed, peer = %addr, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{ClientConfig, ClientConnection, HandshakeKind, ServerConnection};

    /// Runs one TLS handshake in memory, then lets the server send whatever
    /// follows it (session tickets), and says which kind it was.
    fn handshake(client: &Arc<ClientConfig>, server: &Arc<rustls::ServerConfig>) -> HandshakeKind {
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut c = ClientConnection::new(client.clone(), name).unwrap();
        let mut s = ServerConnection::new(server.clone()).unwrap();
        let mut buf = Vec::new();
        for _ in 0..10 {
            buf.clear();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).unwrap();
            }
            s.process_new_packets().unwrap();
            buf.clear();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
            }
            c.process_new_packets().unwrap();
        }
        assert!(!c.is_handshaking() && !s.is_handshaking());
        c.handshake_kind().unwrap()
    }

    #[test]
    fn a_query_connection_leaves_no_session_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        crate::certs::make(&crate::certs::Request {
            dir: dir.path().to_owned(),
            server_names: vec!["127.0.0.1".to_owned()],
            clients: vec!["q".to_owned()],
            valid_for: Duration::from_secs(3600),
            ..Default::default()
        })
        .unwrap();
        let server = server_config(&TlsFiles {
            cert: dir.path().join("server.pem"),
            key: dir.path().join("server-key.pem"),
            client_ca: dir.path().join("ca.pem"),
        })
        .unwrap();
        assert!(!server.session_storage.can_cache());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(dir.path().join("ca.pem")).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(dir.path().join("client-q.pem")).unwrap()],
                PrivateKeyDer::from_pem_file(dir.path().join("client-q-key.pem")).unwrap(),
            )
            .unwrap();
        // The client keeps tickets across its connections (rustls' default),
        // so a second connection would resume if the server offered any.
        let client = Arc::new(client);
        assert_eq!(handshake(&client, &server), HandshakeKind::Full);
        assert_eq!(handshake(&client, &server), HandshakeKind::Full);
    }
}
