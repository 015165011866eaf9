//! Sessions of the token login: a query token entered once on the login
//! page is exchanged for a random session id, which the browser keeps in a
//! `__Host-` cookie. The token itself is never put in the cookie, nor
//! kept: a session holds only the name of the token's holder.
//!
//! Bounds: a session ends after [`IDLE`] without a page and at [`ABSOLUTE`]
//! whatever happens; at most [`MAX_SESSIONS`] are held (opening one more
//! ends the oldest). Ids are 32 bytes from the system's CSPRNG (through
//! rustls' ring provider), kept only as their SHA-256, so that what memory
//! holds cannot be replayed as a cookie. Sessions live in memory: a restart
//! signs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The cookie's name (`__Host-`: Secure, Path=/, no Domain).
pub const COOKIE: &str = "__Host-envparity_session";
/// A session unused for this long ends.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after it opened, used or not.
pub const ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions held at most.
pub const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
struct Session {
    who: String,
    opened: Instant,
    used: Instant,
}

/// The sessions held.
#[derive(Debug)]
pub struct Sessions {
    held: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    absolute: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(IDLE, ABSOLUTE)
    }
}

/// Randomness failed: no session can be opened.
#[derive(Debug, thiserror::Error)]
#[error("no randomness for a session id")]
pub struct NoRandomness;

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Sessions that end after `idle` unused or `absolute` after opening.
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        Sessions {
            held: Mutex::new(HashMap::new()),
            idle,
            absolute,
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.saturating_duration_since(s.used) < self.idle
            && now.saturating_duration_since(s.opened) < self.absolute
    }

    /// Opens a session for `who` at `now`; returns its id (64 hex digits),
    /// the cookie's value.
    pub fn open(&self, who: &str, now: Instant) -> Result<String, NoRandomness> {
        let mut id = [0u8; 32];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut id)
            .map_err(|_| NoRandomness)?;
        let id = hex::encode(id);
        let mut held = self.held();
        held.retain(|_, s| self.alive(s, now));
        if held.len() >= MAX_SESSIONS
            && let Some(oldest) = held.iter().min_by_key(|(_, s)| s.opened).map(|(k, _)| *k)
        {
            held.remove(&oldest);
        }
        held.insert(
            key(&id),
            Session {
                who: who.to_owned(),
                opened: now,
                used: now,
            },
        );
        Ok(id)
    }

    /// Who holds session `id` at `now`, if it is alive; using it restarts
    /// its idle time.
    pub fn check(&self, id: &str, now: Instant) -> Option<String> {
        let mut held = self.held();
        let k = key(id);
        let alive = held.get(&k).is_some_and(|s| self.alive(s, now));
        if !alive {
            held.remove(&k);
            return None;
        }
        let s = held.get_mut(&k)?;
        s.used = now;
        Some(s.who.clone())
    }

    /// Ends session `id`.
    pub fn close(&self, id: &str) {
        self.held().remove(&key(id));
    }

    /// Sessions held (alive or not yet swept).
    pub fn len(&self) -> usize {
        self.held().len()
    }

    /// No session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The session id a request's cookies carry, if any.
pub fn id(headers: &axum::http::HeaderMap) -> Option<&str> {
    super::cookies::named(headers, COOKIE).next()
}

/// The `Set-Cookie` value that gives `id` to the browser.
pub fn set_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that takes the session back.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_random_and_held_only_as_its_hash() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let a = sessions.open("ci", now).unwrap();
        let b = sessions.open("ci", now).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(sessions.check(&a, now).as_deref(), Some("ci"));
        assert!(
            !sessions
                .held()
                .contains_key(hex::decode(&a).unwrap().as_slice())
        );
        assert_eq!(sessions.check("f00", now), None);
    }

    #[test]
    fn a_session_ends_when_idle_and_at_its_absolute_expiry() {
        let sessions = Sessions::new(Duration::from_secs(10), Duration::from_secs(25));
        let t0 = Instant::now();
        let id = sessions.open("ops", t0).unwrap();
        // Used every 9 s it stays, until 25 s after it opened.
        for s in [9, 18] {
            assert!(
                sessions.check(&id, t0 + Duration::from_secs(s)).is_some(),
                "{s}"
            );
        }
        assert_eq!(sessions.check(&id, t0 + Duration::from_secs(25)), None);
        let idle = sessions.open("ops", t0).unwrap();
        assert_eq!(sessions.check(&idle, t0 + Duration::from_secs(10)), None);
        let closed = sessions.open("ops", t0).unwrap();
        sessions.close(&closed);
        assert_eq!(sessions.check(&closed, t0), None);
    }

    #[test]
    fn the_cookie_is_host_only_secure_http_only_and_strict() {
        let set = set_cookie("abc");
        assert!(set.starts_with("__Host-envparity_session=abc;"), "{set}");
        for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(set.contains(attribute), "{set}");
        }
        assert!(!set.contains("Domain"), "{set}");
        let cookies = |header: &'static str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(
                axum::http::header::COOKIE,
                axum::http::HeaderValue::from_static(header),
            );
            headers
        };
        assert_eq!(
            id(&cookies("theme=dark; __Host-envparity_session=abc; x=y")),
            Some("abc")
        );
        assert_eq!(id(&cookies("envparity_session=abc")), None);
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
