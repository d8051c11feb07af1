//! [`LoginLimit`]: failed logins are limited per client address and in
//! total, so the login form cannot be used to guess the admin token fast.
//!
//! At most [`FAILURES_PER_ADDRESS`] failures per address and
//! [`FAILURES_TOTAL`] from everywhere in a [`WINDOW`]; past either, every
//! login is answered 429 with `Retry-After` *without checking the token*
//! (checking it would tell a guesser whether a guess was right, and the
//! limit would slow nothing). Successful logins are never counted. IPv6
//! addresses count by their /64, which one client usually holds whole.
//! Memory is bounded: at most [`MAX_ADDRESSES`] addresses are tracked;
//! when full, an untracked address counts only against the total.
//!
//! The total limit means a flood from many addresses can keep the form
//! answering 429 for a window at a time: the admin token still works on
//! the API, and a window is short. Behind a proxy every client shares the
//! proxy's address, so the per-address limit becomes a second total.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Failed logins one address may make per window.
pub const FAILURES_PER_ADDRESS: u32 = 5;
/// Failed logins from all addresses together per window.
pub const FAILURES_TOTAL: u32 = 30;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most.
pub const MAX_ADDRESSES: usize = 1024;

/// Failures since `started`.
#[derive(Clone, Copy, Debug)]
struct Count {
    started: Instant,
    failures: u32,
}

impl Count {
    fn new(now: Instant) -> Self {
        Self {
            started: now,
            failures: 0,
        }
    }

    /// Starts over once the window has passed.
    fn current(&mut self, now: Instant) -> &mut Self {
        if now.duration_since(self.started) >= WINDOW {
            *self = Self::new(now);
        }
        self
    }

    /// Time left in the window when `limit` failures are reached.
    fn blocked(&mut self, now: Instant, limit: u32) -> Option<Duration> {
        let count = self.current(now);
        (count.failures >= limit).then(|| WINDOW.saturating_sub(now - count.started))
    }
}

#[derive(Debug)]
struct State {
    total: Count,
    by_address: HashMap<IpAddr, Count>,
}

/// The failed-login counts; see the module docs.
#[derive(Debug)]
pub struct LoginLimit {
    state: Mutex<State>,
}

impl Default for LoginLimit {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                total: Count::new(Instant::now()),
                by_address: HashMap::new(),
            }),
        }
    }
}

/// The address a client is counted under: IPv6 by its /64.
fn key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

impl LoginLimit {
    /// `Err(retry_after)` while `address` (or everyone) is over the limit.
    pub fn check(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let mut wait = state.total.blocked(now, FAILURES_TOTAL);
        if let Some(count) = address.and_then(|a| state.by_address.get_mut(&key(a)))
            && let Some(left) = count.blocked(now, FAILURES_PER_ADDRESS)
        {
            wait = Some(wait.map_or(left, |w| w.max(left)));
        }
        match wait {
            // At least a second: `Retry-After` counts whole seconds.
            Some(left) => Err(left.max(Duration::from_secs(1))),
            None => Ok(()),
        }
    }

    /// Counts a failed login from `address`.
    pub fn failed(&self, address: Option<IpAddr>) {
        let now = Instant::now();
        let mut state = self.state.lock();
        state.total.current(now).failures += 1;
        let Some(address) = address.map(key) else {
            return;
        };
        if !state.by_address.contains_key(&address) && state.by_address.len() >= MAX_ADDRESSES {
            state
                .by_address
                .retain(|_, count| now.duration_since(count.started) < WINDOW);
            if state.by_address.len() >= MAX_ADDRESSES {
                return;
            }
        }
        state
            .by_address
            .entry(address)
            .or_insert_with(|| Count::new(now))
            .current(now)
            .failures += 1;
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.state.lock().by_address.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_is_limited_for_the_rest_of_its_window() {
        let limit = LoginLimit::default();
        for _ in 0..FAILURES_PER_ADDRESS {
            assert!(limit.check(ip("192.0.2.1")).is_ok());
            limit.failed(ip("192.0.2.1"));
        }
        let wait = limit.check(ip("192.0.2.1")).expect_err("limited");
        assert_eq!(wait, WINDOW);
        // Another address is not.
        assert!(limit.check(ip("192.0.2.2")).is_ok());
        tokio::time::advance(Duration::from_secs(45)).await;
        assert_eq!(limit.check(ip("192.0.2.1")), Err(Duration::from_secs(15)));
        tokio::time::advance(Duration::from_secs(15)).await;
        assert!(limit.check(ip("192.0.2.1")).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_counts_by_its_64_and_the_total_limits_everyone() {
        let limit = LoginLimit::default();
        for i in 0..FAILURES_PER_ADDRESS {
            limit.failed(ip(&format!("2001:db8::{i:x}")));
        }
        assert!(limit.check(ip("2001:db8::ffff")).is_err());
        assert!(limit.check(ip("2001:db8:0:1::1")).is_ok());
        for i in 0..FAILURES_TOTAL {
            limit.failed(ip(&format!("198.51.100.{i}")));
        }
        assert!(limit.check(ip("203.0.113.9")).is_err());
        assert!(limit.check(None).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded() {
        let limit = LoginLimit::default();
        for i in 0..(MAX_ADDRESSES as u32 * 4) {
            limit.failed(Some(IpAddr::V4(i.into())));
        }
        assert_eq!(limit.tracked(), MAX_ADDRESSES);
        tokio::time::advance(WINDOW).await;
        limit.failed(ip("192.0.2.200"));
        assert_eq!(limit.tracked(), 1);
    }
}
