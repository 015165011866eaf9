//! Who may call what.
//!
//! With TLS on, every connection presents (or not) a client certificate
//! signed by the fleet CA; its subject says who it is (`CN`) and what it may
//! do (`OU`, see [`crate::certs`]):
//! - reports need an **agent** certificate whose CN is the host id being
//!   reported: an agent can only report for its own host. Anything else is
//!   `PERMISSION_DENIED` (no certificate: `UNAUTHENTICATED`), logged without
//!   the report's content, and nothing of it is stored;
//! - queries need a **query** certificate or a bearer token from the tokens
//!   file (stored as SHA-256, compared in constant time). An agent
//!   certificate cannot query; a token cannot report.
//!
//! In plain-text mode (no TLS files configured) there are no certificates: reports are accepted from anyone who can reach
//! the port, and queries need a token only when a tokens file is configured.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

use super::throttle::{INTERVAL, Throttle};
pub use crate::certs::token_hash;
use crate::certs::{self, ADMIN_OU, AGENT_OU, QUERY_OU};
use crate::warn_throttled;

// Refusals are provoked at will by callers without credentials: their lines
// are throttled, per kind (the metrics count every one).
static NO_CERTIFICATE: Throttle = Throttle::new(INTERVAL);
static NOT_AN_AGENT: Throttle = Throttle::new(INTERVAL);
static OTHER_HOST: Throttle = Throttle::new(INTERVAL);
static OTHER_ENVIRONMENT: Throttle = Throttle::new(INTERVAL);
static NOT_A_QUERIER: Throttle = Throttle::new(INTERVAL);
static UNKNOWN_TOKEN: Throttle = Throttle::new(INTERVAL);
static NOT_AN_ADMIN: Throttle = Throttle::new(INTERVAL);

/// The caller's address, for log lines.
fn from<T>(request: &Request<T>) -> String {
    request
        .remote_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.to_string())
}

/// A query token as stored: its name and hash.
#[derive(Clone)]
pub struct StoredToken {
    /// Who holds it (for logs).
    pub name: String,
    hash: [u8; 32],
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Reads a tokens file: one `NAME sha256:HEX` per line; `#` comments and
/// blank lines are skipped. Errors name the line.
pub fn read_tokens(path: &Path) -> Result<Vec<StoredToken>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("tokens file {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("tokens file {} line {}: {why}", path.display(), i + 1);
        let (name, hash) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected `NAME sha256:HEX` (see `envparity query-token`)"))?;
        let hex_part = hash
            .trim()
            .strip_prefix("sha256:")
            .ok_or_else(|| bad("the hash must start with `sha256:`"))?;
        let bytes = hex::decode(hex_part).map_err(|_| bad("the hash is not hex"))?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("the hash is not 32 bytes (64 hex digits)"))?;
        out.push(StoredToken {
            name: name.to_owned(),
            hash,
        });
    }
    Ok(out)
}

/// Who is calling, from its client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The certificate's common name (a host id or a client name).
    pub name: String,
    /// Its organizational unit: what it may do.
    pub role: String,
    /// The environment an agent certificate is bound to, if any
    /// ([`crate::certs::bound_environment`]).
    pub environment: Option<String>,
}

/// The peer of a request over TLS with a client certificate.
pub fn peer<T>(request: &Request<T>) -> Option<Peer> {
    let certs = request.peer_certs()?;
    let subject = certs::subject(certs.first()?.as_ref())?;
    Some(Peer {
        name: subject.name,
        role: subject.role,
        environment: subject.environment,
    })
}

/// The access rules in force.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// Whether TLS with client certificates is on.
    pub tls: bool,
    /// Query tokens; `None`: tokens are not accepted.
    pub tokens: Option<Vec<StoredToken>>,
    /// Where the tokens came from, for logs.
    pub tokens_file: Option<PathBuf>,
}

impl Auth {
    /// May this caller report at all? Needs only the request's headers and
    /// its connection, so the report service checks it in an interceptor,
    /// before a byte of the body is read: a caller without an agent
    /// certificate cannot make the server buffer anything.
    pub fn reporter<T>(&self, request: &Request<T>) -> Result<(), Status> {
        if !self.tls {
            return Ok(());
        }
        match peer(request) {
            None => {
                warn_throttled!(NO_CERTIFICATE, peer = %from(request), "report without a client certificate refused");
                Err(Status::unauthenticated(
                    "reports need an agent client certificate (see `envparity certs --agent`)",
                ))
            }
            Some(p) if p.role != AGENT_OU => {
                warn_throttled!(NOT_AN_AGENT, peer = %from(request), certificate = %p.name.escape_debug(), role = %p.role.escape_debug(), "report with a non-agent certificate refused");
                Err(Status::permission_denied(format!(
                    "certificate {:?} (OU {:?}) may not report; reports need an {AGENT_OU} certificate",
                    p.name, p.role
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// May this request report for `host_id` in `environment`?
    /// ([`Auth::reporter`], the certificate names that host, and, when it is
    /// bound to an environment, that one.)
    pub fn report<T>(
        &self,
        request: &Request<T>,
        host_id: &str,
        environment: &str,
    ) -> Result<(), Status> {
        self.reporter(request)?;
        match peer(request) {
            Some(p) if self.tls && p.name != host_id => {
                warn_throttled!(OTHER_HOST, peer = %from(request), certificate = %p.name.escape_debug(), host = %host_id.escape_debug(), "report for another host refused");
                Err(Status::permission_denied(format!(
                    "the certificate of host {:?} may not report for host {:?}",
                    p.name, host_id
                )))
            }
            Some(Peer {
                name,
                environment: Some(bound),
                ..
            }) if self.tls && bound != environment => {
                warn_throttled!(OTHER_ENVIRONMENT, peer = %from(request), certificate = %name.escape_debug(), bound = %bound.escape_debug(), environment = %environment.escape_debug(), "report for another environment refused");
                Err(Status::permission_denied(format!(
                    "the certificate of host {name:?} is bound to environment {bound:?}; it may not report for environment {:?}",
                    environment.escape_debug().to_string()
                )))
            }
            _ => Ok(()),
        }
    }

    /// May this request change what the aggregator holds (forget a host)?
    /// With TLS, only an admin certificate may; in plain text there are no
    /// roles, and whoever may query may. Returns who is asking, for the
    /// audit line.
    pub fn admin<T>(&self, request: &Request<T>) -> Result<String, Status> {
        if !self.tls {
            self.query(request)?;
            return Ok(format!("plain-text caller at {}", from(request)));
        }
        match peer(request) {
            Some(p) if p.role == ADMIN_OU => Ok(format!("{} at {}", p.name, from(request))),
            other => {
                let who = other.map_or_else(
                    || "a token".to_owned(),
                    |p| format!("certificate {:?} (OU {:?})", p.name, p.role),
                );
                warn_throttled!(NOT_AN_ADMIN, peer = %from(request), caller = %who.escape_debug(), "admin call without an admin certificate refused");
                Err(Status::permission_denied(format!(
                    "{who} may not change what the aggregator holds; that needs an {ADMIN_OU} certificate (envparity certs --admin NAME)"
                )))
            }
        }
    }

    /// May this request query?
    pub fn query<T>(&self, request: &Request<T>) -> Result<(), Status> {
        if let Some(p) = self.tls.then(|| peer(request)).flatten() {
            if p.role == QUERY_OU || p.role == ADMIN_OU {
                return Ok(());
            }
            warn_throttled!(NOT_A_QUERIER, peer = %from(request), certificate = %p.name.escape_debug(), role = %p.role.escape_debug(), "query with a non-query certificate refused");
            return Err(Status::permission_denied(format!(
                "certificate {:?} (OU {:?}) may not query; queries need an {QUERY_OU} certificate or a token",
                p.name, p.role
            )));
        }
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match (&self.tokens, presented) {
            (Some(tokens), Some(token)) => {
                let hash: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
                // Compare with every stored hash, without stopping early.
                let mut found = subtle::Choice::from(0);
                for t in tokens {
                    found |= t.hash.ct_eq(&hash);
                }
                if bool::from(found) {
                    Ok(())
                } else {
                    warn_throttled!(UNKNOWN_TOKEN, peer = %from(request), "query with an unknown token refused");
                    Err(Status::unauthenticated("the bearer token is not valid"))
                }
            }
            (Some(_), None) => Err(Status::unauthenticated(
                "queries need a query client certificate or a bearer token (--token-file)",
            )),
            (None, _) if self.tls => Err(Status::unauthenticated(
                "queries need a query client certificate (see `envparity certs --client`)",
            )),
            (None, _) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_by_hash_and_the_file_is_strict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let good = token_hash("ept_secret");
        std::fs::write(
            &path,
            format!("# ci\nci {good}\n\nops {}\n", token_hash("other")),
        )
        .unwrap();
        let tokens = read_tokens(&path).unwrap();
        assert_eq!(tokens.len(), 2);
        let auth = Auth {
            tls: false,
            tokens: Some(tokens),
            tokens_file: Some(path.clone()),
        };
        let with = |t: &str| {
            let mut r = Request::new(());
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
            r
        };
        assert!(auth.query(&with("ept_secret")).is_ok());
        assert_eq!(
            auth.query(&with("ept_wrong")).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            auth.query(&Request::new(())).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        // Debug never shows a hash.
        assert!(!format!("{auth:?}").contains(&good[7..]));

        for (text, expected) in [
            ("ci", "expected `NAME sha256:HEX`"),
            ("ci md5:00", "must start with `sha256:`"),
            ("ci sha256:zz", "not hex"),
            ("ci sha256:00", "not 32 bytes"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = read_tokens(&path).unwrap_err();
            assert!(
                err.contains("line 1") && err.contains(expected),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn plaintext_without_tokens_lets_everyone_through() {
        let auth = Auth::default();
        assert!(auth.query(&Request::new(())).is_ok());
        assert!(auth.report(&Request::new(()), "h1", "production").is_ok());
    }

    #[test]
    fn tls_without_a_certificate_is_unauthenticated() {
        let auth = Auth {
            tls: true,
            ..Auth::default()
        };
        assert_eq!(
            auth.report(&Request::new(()), "h1", "production")
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            auth.query(&Request::new(())).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        // Without an admin certificate nothing changes what is held, not
        // even with a valid token.
        let with_token = Auth {
            tls: true,
            tokens: Some(vec![StoredToken {
                name: "ci".into(),
                hash: Sha256::digest(b"ept_secret").into(),
            }]),
            tokens_file: None,
        };
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert("authorization", "Bearer ept_secret".parse().unwrap());
        assert!(with_token.query(&request).is_ok());
        let err = with_token.admin(&request).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(err.message().contains("envparity-admin"), "{err:?}");
        // In plain text there are no roles.
        assert!(Auth::default().admin(&Request::new(())).is_ok());
    }
}
