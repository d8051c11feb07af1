//! Support the binary's `perfscope demo` and the tests share, compiled
//! into the crate so both use one copy, but kept out of the documented API
//! (`#[doc(hidden)]`): nothing here is for a host app.

pub mod cluster;
