//! Support the binary's `perfscope demo` and the tests share, compiled
//! into the crate so both use one copy, but kept out of the documented API
//! (`#[doc(hidden)]`): nothing here is for a host app. `history` seeds
//! the history store with weeks of plausible history (the browser tour
//! of the ranges, the page-load benchmark).

pub mod cluster;
#[cfg(feature = "store")]
pub mod history;
