//! `envparity certs` and `envparity query-token`: the credentials of a fleet.
//!
//! One CA signs three kinds of certificates, told apart by their subject's
//! organizational unit (OU), which the aggregator checks on every call:
//! - the aggregator's **server** certificate (its DNS names and IPs as SANs);
//! - one **agent** certificate per host (`OU=envparity-agent`, `CN=<host
//!   id>`): it may report, for that host only. Made with `--environment`,
//!   it also carries the URI `urn:envparity:environment:<ENV>` as a subject
//!   alternative name, and may report for that environment only;
//! - **query** client certificates (`OU=envparity-query`, `CN=<name>`): they
//!   may read, never report;
//! - **admin** client certificates (`OU=envparity-admin`, `CN=<name>`): they
//!   may read and change what the aggregator holds (`envparity hosts
//!   forget`), never report.
//!
//! Query access can also use bearer tokens: [`new_token`] makes one and the
//! line for the aggregator's tokens file, which holds only its SHA-256.
//!
//! Private keys are written readable by their owner only. This is meant for
//! test fleets and small installations; a fleet with its own PKI issues the
//! same three kinds of certificates from it.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The OU of agent certificates.
pub const AGENT_OU: &str = "envparity-agent";
/// The OU of query (CLI) certificates.
pub const QUERY_OU: &str = "envparity-query";
/// The OU of admin (CLI) certificates: query, and forget hosts.
pub const ADMIN_OU: &str = "envparity-admin";
/// How an agent certificate names the environment it is bound to: a URI
/// subject alternative name, this prefix followed by the environment.
pub const ENVIRONMENT_URI_PREFIX: &str = "urn:envparity:environment:";

/// The environment an agent certificate is bound to, if any. A certificate
/// naming several is bound to the first (`envparity certs` writes one).
pub fn bound_environment(cert: &x509_parser::certificate::X509Certificate<'_>) -> Option<String> {
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        x509_parser::extensions::GeneralName::URI(uri) => {
            uri.strip_prefix(ENVIRONMENT_URI_PREFIX).map(str::to_owned)
        }
        _ => None,
    })
}

/// What a client certificate says of its holder: the gRPC API and the web
/// view read it the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The common name (a host id or a client name).
    pub name: String,
    /// The organizational unit: the role ([`AGENT_OU`], [`QUERY_OU`],
    /// [`ADMIN_OU`]), empty when there is none.
    pub role: String,
    /// The environment an agent certificate is bound to, if any
    /// ([`bound_environment`]).
    pub environment: Option<String>,
}

/// The subject of a DER certificate; `None` when it is not one or names
/// no common name.
pub fn subject(der: &[u8]) -> Option<Subject> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())?
        .to_owned();
    let role = subject
        .iter_organizational_unit()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    Some(Subject {
        name,
        role,
        environment: bound_environment(&cert),
    })
}

/// Why credentials could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("{what}: {source}")]
    Generate {
        /// What was being made.
        what: String,
        /// The cause.
        source: rcgen::Error,
    },
    /// A name cannot be used.
    #[error("{0}")]
    BadName(String),
}

/// What to make.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The directory (created if missing). An existing CA there is reused.
    pub dir: PathBuf,
    /// The aggregator's DNS names and IP addresses; empty: no server cert.
    pub server_names: Vec<String>,
    /// Host ids to make agent certificates for.
    pub agents: Vec<String>,
    /// The environment every agent certificate made is bound to; `None`:
    /// they may report for any environment.
    pub environment: Option<String>,
    /// Names to make query certificates for.
    pub clients: Vec<String>,
    /// Names to make admin certificates for.
    pub admins: Vec<String>,
    /// Validity of new leaf certificates.
    pub valid_for: Duration,
}

fn generate(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> CertsError {
    let what = what.into();
    move |source| CertsError::Generate { what, source }
}

fn write(path: &Path, text: &str, private: bool) -> Result<(), CertsError> {
    let io = |source| CertsError::Io {
        path: path.to_owned(),
        source,
    };
    // Replace, never append; a key file is created owner-only from the start.
    let _ = std::fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)
}

fn read(path: &Path) -> Result<String, CertsError> {
    std::fs::read_to_string(path).map_err(|source| CertsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// A name usable in a file name and a certificate subject.
fn check_name(what: &str, name: &str) -> Result<(), CertsError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(CertsError::BadName(format!(
            "{what} {name:?}: use 1-128 ASCII letters, digits, '.', '-' or '_'"
        )))
    }
}

fn validity(params: &mut CertificateParams, valid_for: Duration) {
    let now = rcgen::date_time_ymd(1970, 1, 1)
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
    // A little slack for clocks that lag the issuer's.
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + valid_for;
}

/// Makes (or reuses) the CA and every certificate asked for; returns the
/// files written.
pub fn make(req: &Request) -> Result<Vec<PathBuf>, CertsError> {
    std::fs::create_dir_all(&req.dir).map_err(|source| CertsError::Io {
        path: req.dir.clone(),
        source,
    })?;
    let mut written = Vec::new();
    let (ca_pem_path, ca_key_path) = (req.dir.join("ca.pem"), req.dir.join("ca-key.pem"));
    let ca_key = if ca_pem_path.exists() {
        KeyPair::from_pem(&read(&ca_key_path)?).map_err(generate("read the CA key"))?
    } else {
        let key = KeyPair::generate().map_err(generate("CA key"))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate("CA"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "envparity fleet CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, Duration::from_secs(10 * 365 * 86400));
        let cert = params.self_signed(&key).map_err(generate("CA"))?;
        write(&ca_key_path, &key.serialize_pem(), true)?;
        write(&ca_pem_path, &cert.pem(), false)?;
        written.extend([ca_pem_path.clone(), ca_key_path.clone()]);
        key
    };
    let issuer = Issuer::from_ca_cert_pem(&read(&ca_pem_path)?, ca_key)
        .map_err(generate("read the CA certificate"))?;

    let mut leaf = |file: String,
                    sans: Vec<String>,
                    uris: Vec<String>,
                    cn: &str,
                    ou: Option<&str>,
                    eku: ExtendedKeyUsagePurpose|
     -> Result<(), CertsError> {
        let key = KeyPair::generate().map_err(generate(format!("{file} key")))?;
        let mut params = CertificateParams::new(sans).map_err(generate(file.clone()))?;
        for uri in uris {
            let uri = rcgen::string::Ia5String::try_from(uri.as_str())
                .map_err(generate(format!("{file}: URI {uri:?}")))?;
            params.subject_alt_names.push(rcgen::SanType::URI(uri));
        }
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(ou) = ou {
            params
                .distinguished_name
                .push(DnType::OrganizationalUnitName, ou);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![eku];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, req.valid_for);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(generate(file.clone()))?;
        let (pem, key_path) = (
            req.dir.join(format!("{file}.pem")),
            req.dir.join(format!("{file}-key.pem")),
        );
        write(&key_path, &key.serialize_pem(), true)?;
        write(&pem, &cert.pem(), false)?;
        written.extend([pem, key_path]);
        Ok(())
    };
    if !req.server_names.is_empty() {
        let cn = req.server_names[0].clone();
        leaf(
            "server".to_owned(),
            req.server_names.clone(),
            Vec::new(),
            &cn,
            None,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
    }
    let bound: Vec<String> = match &req.environment {
        Some(env) => {
            envparity_proto::names::validate_environment(env)
                .map_err(|e| CertsError::BadName(format!("--environment: {e}")))?;
            vec![format!("{ENVIRONMENT_URI_PREFIX}{env}")]
        }
        None => Vec::new(),
    };
    for host in &req.agents {
        check_name("host id", host)?;
        leaf(
            format!("agent-{host}"),
            Vec::new(),
            bound.clone(),
            host,
            Some(AGENT_OU),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
    }
    for name in &req.admins {
        check_name("admin name", name)?;
        leaf(
            format!("admin-{name}"),
            Vec::new(),
            Vec::new(),
            name,
            Some(ADMIN_OU),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
    }
    for name in &req.clients {
        check_name("client name", name)?;
        leaf(
            format!("client-{name}"),
            Vec::new(),
            Vec::new(),
            name,
            Some(QUERY_OU),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
    }
    Ok(written)
}

/// The SHA-256 of a token as written in the tokens file: `sha256:HEX`
/// (what [`new_token`] prints and the aggregator compares against).
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// A new query token for `name`: the token (shown once, give it to the
/// client) and the tokens-file line (`NAME sha256:HEX`) for the aggregator.
pub fn new_token(name: &str) -> Result<(String, String), CertsError> {
    use base64::Engine as _;
    check_name("token name", name)?;
    let mut bytes = [0u8; 32];
    // The operating system's CSPRNG (ring, through rustls' provider): a token
    // must not come from a seeded PRNG.
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| CertsError::BadName("the system random generator failed".to_owned()))?;
    let token = format!(
        "ept_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let line = format!("{name} {}", token_hash(&token));
    Ok((token, line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject as _;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_are_owner_only_and_a_second_run_reuses_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let req = Request {
            dir: dir.path().join("pki"),
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
            agents: vec!["host-1".into()],
            environment: None,
            clients: vec!["cli".into()],
            admins: vec![],
            valid_for: Duration::from_secs(86_400),
        };
        let first = make(&req).unwrap();
        assert_eq!(first.len(), 8);
        for path in &first {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            let key = path.to_string_lossy().ends_with("-key.pem");
            assert_eq!(mode, if key { 0o600 } else { 0o644 }, "{}", path.display());
        }
        let ca = std::fs::read_to_string(req.dir.join("ca.pem")).unwrap();
        let again = make(&Request {
            agents: vec!["host-2".into()],
            server_names: vec![],
            clients: vec![],
            ..req.clone()
        })
        .unwrap();
        assert_eq!(again.len(), 2, "only the new agent's files");
        assert_eq!(std::fs::read_to_string(req.dir.join("ca.pem")).unwrap(), ca);
        // The agent certificate names its host and role.
        let pem = std::fs::read_to_string(req.dir.join("agent-host-2.pem")).unwrap();
        let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let subject = cert.subject().to_string();
        assert!(
            subject.contains("CN=host-2") && subject.contains(AGENT_OU),
            "{subject}"
        );
        assert_eq!(bound_environment(&cert), None);
        // Bound to an environment: the certificate says which.
        make(&Request {
            agents: vec!["host-3".into()],
            environment: Some("staging".into()),
            server_names: vec![],
            clients: vec![],
            ..req.clone()
        })
        .unwrap();
        let pem = std::fs::read_to_string(req.dir.join("agent-host-3.pem")).unwrap();
        let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        assert_eq!(bound_environment(&cert).as_deref(), Some("staging"));
        let err = make(&Request {
            agents: vec!["host-4".into()],
            environment: Some("Prod!".into()),
            ..req.clone()
        })
        .unwrap_err();
        assert!(err.to_string().contains("--environment"), "{err}");
    }

    #[test]
    fn hostile_names_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let err = make(&Request {
            dir: dir.path().to_owned(),
            agents: vec!["../etc/passwd".into()],
            valid_for: Duration::from_secs(60),
            ..Request::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("host id"), "{err}");
        let (a, line) = new_token("ci").unwrap();
        let (b, _) = new_token("ci").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("ept_") && a.len() > 40);
        assert_eq!(line, format!("ci {}", token_hash(&a)));
    }
}
