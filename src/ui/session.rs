//! Sessions of the pages: the admin token, typed once into the login form,
//! is exchanged for a random session id in an `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure` when the agent serves TLS); the token itself never
//! travels again and never appears in a URL. Each session carries a CSRF
//! token that every form posting a change must echo.
//!
//! Bounded: at most [`MAX_SESSIONS`] live sessions (the oldest is dropped
//! first), each expiring after [`SESSION_TTL`]. Ids are 256 random bits
//! from the OS: unguessable, so a map lookup needs no constant-time
//! compare; the login's token check and the CSRF check are constant time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use subtle::ConstantTimeEq;

/// Sessions kept at most.
pub const MAX_SESSIONS: usize = 64;
/// A session's lifetime.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The cookie's name.
pub const COOKIE: &str = "perfscope_session";

/// One logged-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// The token forms must echo.
    pub csrf: String,
    created: Instant,
}

/// The live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

/// `bytes` random bytes from the OS, as hex.
fn random_hex(bytes: usize) -> Option<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).ok()?;
    Some(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    /// Opens a session: its id (for the cookie) and CSRF token; `None` when
    /// the OS has no randomness to give.
    pub fn open(&self) -> Option<(String, Session)> {
        let id = random_hex(32)?;
        let session = Session {
            csrf: random_hex(32)?,
            created: Instant::now(),
        };
        let mut live = self.live.lock();
        live.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        while live.len() >= MAX_SESSIONS {
            let Some(oldest) = live
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            live.remove(&oldest);
        }
        live.insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// The live session of `id`.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut live = self.live.lock();
        match live.get(id) {
            Some(s) if s.created.elapsed() < SESSION_TTL => Some(s.clone()),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `id`.
    pub fn close(&self, id: &str) {
        self.live.lock().remove(id);
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        self.live.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Session {
    /// Whether `given` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, given: &str) -> bool {
        bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// The `Set-Cookie` value opening a session.
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value ending it.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The session id in a `Cookie` header, if any.
pub fn cookie_id(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_expire_and_stay_bounded() {
        let sessions = Sessions::default();
        let (id, session) = sessions.open().expect("randomness");
        assert_eq!(id.len(), 64);
        assert!(sessions.get(&id).is_some());
        assert!(session.csrf_matches(&session.csrf));
        assert!(!session.csrf_matches("0"));
        assert!(!session.csrf_matches(""));
        for _ in 0..MAX_SESSIONS + 5 {
            sessions.open().expect("randomness");
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.get(&id).is_none(), "the oldest left first");
        let (id, _) = sessions.open().expect("randomness");
        sessions.close(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn cookies_carry_the_flags_and_parse_back() {
        let cookie = set_cookie(&"a".repeat(64), true);
        for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/ui"] {
            assert!(cookie.contains(flag), "{cookie}");
        }
        assert!(!set_cookie("x", false).contains("Secure"));
        let header = format!("theme=dark; {COOKIE}={}; other=1", "b".repeat(64));
        assert_eq!(cookie_id(&header), Some("b".repeat(64).as_str()));
        assert_eq!(cookie_id(&format!("{COOKIE}=short")), None);
        assert_eq!(cookie_id("nothing"), None);
    }
}
