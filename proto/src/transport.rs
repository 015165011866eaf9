//! Client-side transport security, shared by the agent and the CLI: one way
//! to turn an aggregator address and TLS files into a tonic endpoint.
//!
//! `https://` addresses get TLS (rustls with ring, as the server; the server
//! accepts TLS 1.3 only) verified against the fleet CA, and present a client
//! certificate when one is given. `http://` addresses are plain text: refused
//! unless plain text was explicitly allowed ([`Plaintext`]), and then only to
//! a loopback address unless forced. They also refuse TLS files, so a
//! mistyped scheme cannot silently drop encryption.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// Whether plain-text gRPC (no TLS) is allowed, for a client's `http://`
/// address or a server's listen address alike. Plain text carries reports
/// and queries unencrypted and without certificate identities, so it is
/// refused unless asked for (`--insecure-plaintext`), and then allowed only
/// on loopback unless forced (`--insecure-plaintext-anywhere`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Plaintext {
    /// TLS only (the default).
    #[default]
    Refused,
    /// Plain text to or on loopback addresses only.
    Loopback,
    /// Plain text anywhere: only for networks trusted by other means.
    Anywhere,
}

impl Plaintext {
    /// From the two flags; `anywhere` implies plain text is allowed.
    pub fn from_flags(insecure_plaintext: bool, anywhere: bool) -> Self {
        match (insecure_plaintext, anywhere) {
            (_, true) => Self::Anywhere,
            (true, false) => Self::Loopback,
            (false, false) => Self::Refused,
        }
    }

    /// Whether any plain text is allowed.
    pub fn allowed(self) -> bool {
        self != Self::Refused
    }

    /// Checks that plain text may be used for `what` (an address, named in
    /// the error) whose host is `host`.
    pub fn check(self, what: &str, host: &str) -> Result<(), String> {
        match self {
            Self::Anywhere => Ok(()),
            Self::Loopback if is_loopback_host(host) => Ok(()),
            Self::Loopback => Err(format!(
                "refusing plain text (no TLS) on non-loopback {what}: use TLS (docs/security.md), or pass --insecure-plaintext-anywhere if the network is trusted by other means"
            )),
            Self::Refused => Err(format!(
                "{what} is plain text (no TLS): reports and queries would travel unencrypted and unauthenticated. Use TLS (`envparity certs` makes a test set; docs/security.md), or pass --insecure-plaintext to allow plain text on loopback"
            )),
        }
    }
}

/// Whether `host` (a name or IP literal, IPv6 with or without brackets) is
/// a loopback address: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The TLS files of a client, and whether it may fall back to plain text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The fleet CA certificate (PEM) the aggregator's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// The client certificate (PEM).
    pub cert: Option<PathBuf>,
    /// Its key (PEM).
    pub key: Option<PathBuf>,
    /// Whether an `http://` address is allowed.
    pub plaintext: Plaintext,
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
            let host = endpoint.uri().host().unwrap_or_default();
            self.plaintext
                .check(&format!("aggregator address {address}"), host)
                .map_err(|message| {
                    TlsSetupError::Mismatch(format!(
                        "{message}; with TLS the address is https://HOST:PORT and needs --tls-ca"
                    ))
                })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(address: &str) -> Endpoint {
        Endpoint::from_shared(address.to_owned()).expect("valid URI")
    }

    fn plain(plaintext: Plaintext) -> ClientTls {
        ClientTls {
            plaintext,
            ..ClientTls::default()
        }
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.9.8.7",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "10.0.0.1",
            "example.com",
            "0.0.0.0",
            "::",
            "[2001:db8::1]",
            "",
            "localhost.evil",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn http_is_refused_unless_plain_text_is_allowed() {
        let address = "http://127.0.0.1:7600";
        let err = plain(Plaintext::Refused)
            .apply(endpoint(address), address)
            .expect_err("plain text is refused by default");
        let message = err.to_string();
        assert!(message.contains(address), "{message}");
        assert!(message.contains("--insecure-plaintext"), "{message}");
        plain(Plaintext::Loopback)
            .apply(endpoint(address), address)
            .expect("loopback plain text when allowed");
    }

    #[test]
    fn plain_text_to_other_hosts_needs_force() {
        let address = "http://10.1.2.3:7600";
        let err = plain(Plaintext::Loopback)
            .apply(endpoint(address), address)
            .expect_err("non-loopback plain text is refused");
        assert!(
            err.to_string().contains("--insecure-plaintext-anywhere"),
            "{err}"
        );
        plain(Plaintext::Anywhere)
            .apply(endpoint(address), address)
            .expect("forced plain text");
    }

    #[test]
    fn tls_files_with_http_are_refused_even_when_plain_text_is_allowed() {
        let address = "http://127.0.0.1:7600";
        let tls = ClientTls {
            ca: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..plain(Plaintext::Anywhere)
        };
        let err = tls.apply(endpoint(address), address).expect_err("mismatch");
        assert!(err.to_string().contains("not https://"), "{err}");
    }

    #[test]
    fn flags_map_to_the_weakest_needed_allowance() {
        assert_eq!(Plaintext::from_flags(false, false), Plaintext::Refused);
        assert_eq!(Plaintext::from_flags(true, false), Plaintext::Loopback);
        assert_eq!(Plaintext::from_flags(false, true), Plaintext::Anywhere);
        assert_eq!(Plaintext::from_flags(true, true), Plaintext::Anywhere);
    }
}
