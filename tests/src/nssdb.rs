//! A browser's own NSS database, where Chromium on Linux finds the CAs it
//! trusts and the client certificates it may present:
//! `$HOME/.pki/nssdb`, made under a HOME of the browser's scratch dir with
//! Debian's `libnss3-tools` (`certutil`, `pk12util`) and `openssl` (PEM to
//! PKCS#12). It holds the fleet's CA, trusted for TLS servers (`C,,`), as a
//! user's browser does after importing it, and at most one client
//! certificate with its key. Nothing is written outside that HOME, and the
//! browser never ignores certificate errors: a page of a server whose CA is
//! not in the database does not load.

use std::path::Path;
use std::process::Command;

use crate::command::checked;
use crate::error::{Error, Result};

/// Where Debian puts the NSS tools (package `libnss3-tools`) and openssl.
pub const CERTUTIL: &str = "/usr/bin/certutil";
pub const PK12UTIL: &str = "/usr/bin/pk12util";
pub const OPENSSL: &str = "/usr/bin/openssl";

/// Makes `home/.pki/nssdb` (empty password) trusting the CA certificate
/// `ca` (PEM) for servers, and holding `client` (a certificate and its key,
/// PEM) when given.
pub(crate) fn create(home: &Path, ca: &Path, client: Option<(&Path, &Path)>) -> Result<()> {
    for (tool, path, package) in [
        ("certutil", CERTUTIL, "libnss3-tools"),
        ("pk12util", PK12UTIL, "libnss3-tools"),
        ("openssl", OPENSSL, "openssl"),
    ] {
        if !Path::new(path).exists() {
            return Err(Error::MissingTool {
                tool,
                path: path.into(),
                package,
            });
        }
    }
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).map_err(Error::io(format!("create {}", db.display())))?;
    let db = format!("sql:{}", db.display());
    let mut init = Command::new(CERTUTIL);
    init.args(["-N", "--empty-password", "-d", &db]);
    checked(init)?;
    let mut trust = Command::new(CERTUTIL);
    trust
        .args([
            "-A",
            "-t",
            "C,,",
            "-n",
            "envparity fleet CA",
            "-d",
            &db,
            "-i",
        ])
        .arg(ca);
    checked(trust)?;
    if let Some((cert, key)) = client {
        let p12 = home.join("client.p12");
        let mut pack = Command::new(OPENSSL);
        pack.args(["pkcs12", "-export", "-passout", "pass:", "-name", "client"])
            .arg("-in")
            .arg(cert)
            .arg("-inkey")
            .arg(key)
            .arg("-out")
            .arg(&p12);
        checked(pack)?;
        let mut import = Command::new(PK12UTIL);
        import.args(["-W", "", "-d", &db, "-i"]).arg(&p12);
        checked(import)?;
    }
    Ok(())
}
