//! Client-side transport security, shared by the agent and the CLI: one way
//! to turn an aggregator address and TLS files into a tonic endpoint.
//!
//! `https://` addresses get TLS (rustls with ring, as the server; the server
//! accepts TLS 1.3 only) verified against the fleet CA, and present a client
//! certificate when one is given. `http://` addresses are plain text and
//! refuse TLS files, so a mistyped scheme cannot silently drop encryption.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// The TLS files of a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The fleet CA certificate (PEM) the aggregator's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// The client certificate (PEM).
    pub cert: Option<PathBuf>,
    /// Its key (PEM).
    pub key: Option<PathBuf>,
}

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The combination does not make sense.
    #[error("{0}")]
    Mismatch(String),
    /// tonic refused the configuration.
    #[error("TLS settings for {address}: {source}")]
    Tonic {
        /// The aggregator address.
        address: String,
        /// The cause.
        source: tonic::transport::Error,
    },
}

fn read(what: &'static str, path: &Path) -> Result<String, TlsSetupError> {
    std::fs::read_to_string(path).map_err(|source| TlsSetupError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

impl ClientTls {
    /// Whether any TLS file is set.
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// Applies these settings to `endpoint` for `address`.
    pub fn apply(&self, endpoint: Endpoint, address: &str) -> Result<Endpoint, TlsSetupError> {
        if !address.starts_with("https://") {
            if self.is_set() {
                return Err(TlsSetupError::Mismatch(format!(
                    "TLS files are given but the aggregator address {address:?} is not https://; use https://HOST:PORT"
                )));
            }
            return Ok(endpoint);
        }
        let ca = self.ca.as_deref().ok_or_else(|| {
            TlsSetupError::Mismatch(format!(
                "{address} is https://: give the fleet CA certificate (--tls-ca)"
            ))
        })?;
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read("the CA certificate", ca)?));
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(
                    read("the client certificate", cert)?,
                    read("the client key", key)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(TlsSetupError::Mismatch(
                    "a client certificate needs both --tls-cert and --tls-key".to_owned(),
                ));
            }
        }
        endpoint
            .tls_config(tls)
            .map_err(|source| TlsSetupError::Tonic {
                address: address.to_owned(),
                source,
            })
    }
}
