//! The readers: one per statistics view of a watched database, each run
//! every read interval by [`super::runner`] behind [`super::Reader`], each
//! keeping its last pass for the API, the pages, the metrics and the
//! findings. [`server`] holds the cluster-wide views the readers of one
//! server's databases share.
//!
//! They sit apart from [`super::actions`] (what an operator asks for now)
//! because a reader only reads, on a schedule, inside the runner's
//! read-only transaction; adding one is its file here and a line in
//! [`super::watch()`].

pub mod activity;
pub mod checks;
pub mod database;
pub mod io;
pub mod replication;
pub mod server;
pub mod shared;
pub mod space;
pub mod statements;
