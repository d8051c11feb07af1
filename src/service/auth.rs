//! The constant-time token comparison both front ends use: the API for
//! its bearer tokens, the pages for the login form. It lives here, not in
//! either, so neither front end imports the other.

use subtle::ConstantTimeEq;

use crate::config::Secret;

/// Compares in time independent of where the two differ (only the length
/// of the expected token can be learned, not its content).
pub fn matches(given: &str, expected: Option<&Secret>) -> bool {
    expected.is_some_and(|secret| bool::from(given.as_bytes().ct_eq(secret.expose().as_bytes())))
}
