//! [`Browser`]: Debian's headless Chromium driven over WebDriver (W3C) by a
//! client of our own, for the web view's tests in a real browser.
//!
//! The guard starts `chromedriver` (package `chromium-driver`) on a free
//! loopback port as a [`Process`], opens one session of `/usr/bin/chromium`
//! (`--headless --no-sandbox --disable-gpu`, a fresh `--user-data-dir` under
//! the fleet's dir) and, on drop, deletes the session, stops the driver by
//! pid, and ends by pid whatever is still running under its dir (Chromium's
//! helpers name the profile dir on their command line). Nothing is matched
//! by process name.
//!
//! With [`BrowserOptions::tls`] the browser runs with a HOME of its own
//! whose NSS database ([`crate::nssdb`]) trusts the fleet's CA and may hold
//! one client certificate, which Chromium then presents to one origin
//! without asking: the user-level content setting
//! `auto_select_certificate` (the twin of the `AutoSelectCertificateForUrls`
//! policy, which would need `/etc/chromium/policies/managed`), written into
//! the fresh profile's preferences by the driver. Nothing is written outside
//! the browser's dir, and certificate errors are never ignored.
//!
//! The WebDriver client speaks HTTP/1.1 on `std::net`, one request a
//! connection; it needs only a handful of commands (navigate, find, text,
//! click, type, source, screenshot, cookies).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::pids;
use crate::process::Process;
use crate::scratch::ScratchDir;
use crate::wait::free_port;

/// Where Debian puts Chromium and its driver.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long the driver may take to listen, and a command to answer.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(60);

/// The axe-core version `scripts/setup.sh` installs (keep the two equal).
pub const AXE_VERSION: &str = "4.10.3";

/// axe-core's script: `$ENVPARITY_AXE_DIR/axe.min.js`, else under
/// `$XDG_CACHE_HOME` (or `~/.cache`) `/envparity/axe-core-VERSION/`, where
/// `scripts/setup.sh` puts it.
pub fn axe_source() -> Result<String> {
    let dir = match std::env::var_os("ENVPARITY_AXE_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
            .unwrap_or_default()
            .join(format!("envparity/axe-core-{AXE_VERSION}")),
    };
    let path = dir.join("axe.min.js");
    std::fs::read_to_string(&path).map_err(|e| Error::Unexpected {
        what: format!("axe-core {AXE_VERSION} at {}", path.display()),
        detail: format!("{e}: run `scripts/setup.sh` as root first, which fetches it from npm"),
    })
}

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How a browser is started.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// Whether pages may run JavaScript.
    pub javascript: bool,
    /// The window's size.
    pub width: u32,
    pub height: u32,
    /// For `https` pages: the CA the browser trusts, and the client
    /// certificate it presents (see the module doc). Without it the browser
    /// trusts no test CA.
    pub tls: Option<BrowserTls>,
}

/// What a browser trusts and presents over TLS.
#[derive(Debug, Clone)]
pub struct BrowserTls {
    /// A CA certificate (PEM) trusted for servers, as a user who imported it.
    pub ca: PathBuf,
    /// The client certificate presented to one origin, if any.
    pub client: Option<ClientCertificate>,
}

/// A client certificate the browser presents to `origin` without asking.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    /// The certificate and its private key (PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// `https://HOST:PORT`, the only origin it is presented to.
    pub origin: String,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        BrowserOptions {
            javascript: true,
            width: 1280,
            height: 900,
            tls: None,
        }
    }
}

/// A headless Chromium with one WebDriver session; see the module doc.
#[derive(Debug)]
pub struct Browser {
    driver: Option<Process>,
    port: u16,
    session: String,
    dir: ScratchDir,
}

impl Browser {
    /// Starts the driver and a browser session in a new dir of `fleet`.
    pub fn start(fleet: &Fleet, options: BrowserOptions) -> Result<Browser> {
        Browser::start_in(fleet.new_dir("browser")?, options)
    }

    /// Starts the driver and a browser session in `dir`, which the browser
    /// owns from then on (a benchmark has no fleet).
    pub fn start_in(dir: ScratchDir, options: BrowserOptions) -> Result<Browser> {
        for (tool, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            if !Path::new(tool).exists() {
                return Err(Error::MissingTool {
                    tool: if package == "chromium" {
                        "chromium"
                    } else {
                        "chromedriver"
                    },
                    path: tool.into(),
                    package,
                });
            }
        }
        // Chromium leaves scoped dirs in its TMPDIR: this one goes with
        // the browser's scratch dir, not into the run's.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).map_err(Error::io(format!("create {}", tmp.display())))?;
        let port = free_port()?;
        let mut driver = Command::new(CHROMEDRIVER);
        driver
            .env("TMPDIR", &tmp)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver-verbose.log").display()
            ))
            .current_dir(dir.path());
        let mut prefs = json!({});
        if !options.javascript {
            prefs["profile.managed_default_content_settings.javascript"] = json!(2);
        }
        if let Some(tls) = &options.tls {
            // Chromium (started by the driver) reads $HOME/.pki/nssdb.
            let home = dir.path().join("home");
            let client = tls
                .client
                .as_ref()
                .map(|c| (c.cert.as_path(), c.key.as_path()));
            crate::nssdb::create(&home, &tls.ca, client)?;
            driver.env("HOME", &home);
            if let Some(client) = &tls.client {
                // The only certificate of the database, for this origin
                // alone: an empty filter matches it.
                let mut exceptions = serde_json::Map::new();
                exceptions.insert(
                    format!("{},*", client.origin),
                    json!({ "setting": { "filters": [{}] } }),
                );
                prefs["profile.content_settings.exceptions.auto_select_certificate"] =
                    Value::Object(exceptions);
            }
        }
        let mut driver = Process::spawn(
            format!("chromedriver {port}"),
            driver,
            dir.path().join("chromedriver.log"),
        )?;
        driver.wait_for_port(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            DRIVER_TIMEOUT,
        )?;
        let profile = dir.path().join("profile");
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    // A page that never loads (a TLS handshake waiting for
                    // a certificate nobody selects) fails well within the
                    // client's read timeout instead of WebDriver's 300 s.
                    "timeouts": { "pageLoad": 30_000 },
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--no-first-run",
                            format!("--user-data-dir={}", profile.display()),
                            format!("--window-size={},{}", options.width, options.height),
                        ],
                        "prefs": prefs,
                    }
                }
            }
        });
        let mut browser = Browser {
            driver: Some(driver),
            port,
            session: String::new(),
            dir,
        };
        let answer = browser.command("POST", "/session", Some(&capabilities))?;
        browser.session = answer["sessionId"]
            .as_str()
            .ok_or_else(|| unexpected("new session", format!("no sessionId in {answer}")))?
            .to_owned();
        Ok(browser)
    }

    /// Opens `url` and waits until it has loaded.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.session_command("POST", "/url", Some(&json!({ "url": url })))
            .map(drop)
    }

    /// The URL shown now.
    pub fn url(&self) -> Result<String> {
        Ok(self
            .session_command("GET", "/url", None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The page's HTML as the browser holds it now.
    pub fn source(&self) -> Result<String> {
        Ok(self
            .session_command("GET", "/source", None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The first element matching `css`.
    pub fn find(&self, css: &str) -> Result<Element<'_>> {
        let found = self.session_command(
            "POST",
            "/element",
            Some(&json!({ "using": "css selector", "value": css })),
        )?;
        let id = found[ELEMENT]
            .as_str()
            .ok_or_else(|| unexpected(&format!("find {css:?}"), found.to_string()))?
            .to_owned();
        Ok(Element { browser: self, id })
    }

    /// The rendered text of the first element matching `css`.
    pub fn text(&self, css: &str) -> Result<String> {
        // A page that updates itself (the live views) can replace the
        // element between finding it and reading it: find it again.
        let mut tries = 3;
        loop {
            match self.find(css)?.text() {
                Err(e) if tries > 1 && e.to_string().contains("stale element reference") => {
                    tries -= 1;
                }
                read => return read,
            }
        }
    }

    /// The text of the first element matching `css` once `done` accepts it,
    /// for at most 10 s: after a click that navigates, the driver may
    /// answer before the next page is there.
    pub fn wait_text(&self, css: &str, done: impl Fn(&str) -> bool) -> Result<String> {
        crate::wait::wait_for(
            Duration::from_secs(10),
            format!("the text of {css:?} in the browser"),
            || Ok(self.text(css).ok().filter(|t| done(t))),
        )
    }

    /// Runs `script` (JavaScript on) and returns its value.
    pub fn execute(&self, script: &str) -> Result<Value> {
        self.session_command(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    /// Runs `script` (JavaScript on) as an asynchronous script: it gets a
    /// callback as its last argument and its value is what it passes to it.
    pub fn execute_async(&self, script: &str) -> Result<Value> {
        self.session_command(
            "POST",
            "/execute/async",
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    /// The cookies the browser holds for the page shown, each as WebDriver
    /// gives it (`name`, `value`, `secure`, `httpOnly`, `sameSite`, …).
    pub fn cookies(&self) -> Result<Vec<Value>> {
        Ok(self
            .session_command("GET", "/cookie", None)?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Runs one Chrome DevTools Protocol command (`cmd`, e.g.
    /// `Network.clearBrowserCache`) and returns its result.
    pub fn devtools(&self, cmd: &str, params: Value) -> Result<Value> {
        self.session_command(
            "POST",
            "/goog/cdp/execute",
            Some(&json!({ "cmd": cmd, "params": params })),
        )
    }

    /// Runs axe-core (installed by `scripts/setup.sh`, see [`axe_source`])
    /// in the page shown and returns its serious and critical violations,
    /// each as `rule: N nodes (first target)`.
    pub fn accessibility_violations(&self) -> Result<Vec<String>> {
        let axe = axe_source()?;
        // WebDriver's scripts run outside the page's CSP.
        self.execute(&format!("{axe}\nreturn 0"))?;
        let found = self.execute_async(
            "const done = arguments[arguments.length - 1];\
                axe.run(document, { resultTypes: ['violations'] })\
                  .then(r => done(r.violations\
                    .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                    .map(v => v.id + ': ' + v.nodes.length + ' nodes (' + v.nodes[0].target.join(' ') + ')')))\
                  .catch(e => done(['axe failed: ' + e]));",
        )?;
        Ok(found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Saves a PNG of the viewport to `path`; returns its size in bytes.
    pub fn screenshot(&self, path: &Path) -> Result<usize> {
        use base64::Engine as _;
        let encoded = self.session_command("GET", "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .map_err(|e| unexpected("screenshot", e.to_string()))?;
        std::fs::write(path, &png).map_err(Error::io(format!("write {}", path.display())))?;
        Ok(png.len())
    }

    /// Resizes the window to `width` × `height`.
    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.session_command(
            "POST",
            "/window/rect",
            Some(&json!({ "width": width, "height": height })),
        )
        .map(drop)
    }

    /// Makes pages see `prefers-color-scheme: dark` (or light), as a system
    /// in dark mode would (Chrome DevTools' media emulation).
    pub fn color_scheme(&self, dark: bool) -> Result<()> {
        let scheme = if dark { "dark" } else { "light" };
        self.devtools(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        )
        .map(drop)
    }

    /// The browser's dir (profile, driver logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn session_command(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        self.command(method, &format!("/session/{}{path}", self.session), body)
    }

    /// One WebDriver command; its `value`, or the error it answered.
    fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let what = format!("WebDriver {method} {path}");
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
            .map_err(Error::io(format!("{what}: connect")))?;
        stream
            .set_read_timeout(Some(DRIVER_TIMEOUT))
            .map_err(Error::io(format!("{what}: set timeout")))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .map_err(Error::io(format!("{what}: send")))?;
        // The driver may keep the connection open: read the head, then as
        // many bytes as it announces (or up to the close).
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let (head, payload) = loop {
            let n = stream
                .read(&mut buf)
                .map_err(Error::io(format!("{what}: read")))?;
            raw.extend_from_slice(&buf[..n]);
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let mut body = raw[end + 4..].to_vec();
                match length {
                    Some(length) => {
                        while body.len() < length {
                            let n = stream
                                .read(&mut buf)
                                .map_err(Error::io(format!("{what}: read")))?;
                            if n == 0 {
                                break;
                            }
                            body.extend_from_slice(&buf[..n]);
                        }
                    }
                    None => {
                        stream
                            .read_to_end(&mut body)
                            .map_err(Error::io(format!("{what}: read")))?;
                    }
                }
                break (head, String::from_utf8_lossy(&body).into_owned());
            }
            if n == 0 {
                return Err(unexpected(&what, "closed before an HTTP header".to_owned()));
            }
        };
        let payload = if head.contains("transfer-encoding: chunked") {
            dechunk(&payload)
        } else {
            payload
        };
        let answer: Value = serde_json::from_str(&payload)
            .map_err(|e| unexpected(&what, format!("{e}: {payload:?}")))?;
        let value = answer["value"].clone();
        if value.get("error").is_some() {
            return Err(unexpected(
                &what,
                format!("{}: {}", value["error"], value["message"]),
            ));
        }
        Ok(value)
    }
}

/// An element of the page.
#[derive(Debug)]
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl Element<'_> {
    fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        self.browser
            .session_command(method, &format!("/element/{}{path}", self.id), body)
    }

    /// Its rendered text.
    pub fn text(&self) -> Result<String> {
        Ok(self
            .command("GET", "/text", None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Clicks it (a link or a button: the browser follows).
    pub fn click(&self) -> Result<()> {
        self.command("POST", "/click", Some(&json!({}))).map(drop)
    }

    /// Empties it and types `text` into it.
    pub fn fill(&self, text: &str) -> Result<()> {
        self.command("POST", "/clear", Some(&json!({})))?;
        self.command("POST", "/value", Some(&json!({ "text": text })))
            .map(drop)
    }

    /// Picks the option whose value is `value` in this `select`.
    pub fn select(&self, value: &str) -> Result<()> {
        let option = self.command(
            "POST",
            "/element",
            Some(
                &json!({ "using": "css selector", "value": format!("option[value=\"{value}\"]") }),
            ),
        )?;
        let id = option[ELEMENT]
            .as_str()
            .ok_or_else(|| unexpected("select option", option.to_string()))?;
        self.browser
            .session_command("POST", &format!("/element/{id}/click"), Some(&json!({})))
            .map(drop)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.command("DELETE", &format!("/session/{}", self.session), None);
        }
        if let Some(mut driver) = self.driver.take() {
            let _ = driver.stop();
        }
        // Chromium's helpers name the profile dir: end any left, by pid.
        for pid in pids::processes_under(self.dir.path()) {
            pids::kill(pid);
        }
    }
}

fn unexpected(what: &str, detail: String) -> Error {
    Error::Unexpected {
        what: what.to_owned(),
        detail,
    }
}

/// The body of a chunked HTTP/1.1 answer.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
