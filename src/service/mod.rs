//! The use cases the two front ends share: the JSON API (`api/`) and the
//! web pages (`ui/`) both call these, and neither imports the other.
//!
//! Each use case here does the work once — looks the database up, counts
//! the request in its existing metric, writes its one log line — and
//! answers a plain value or a [`ServiceError`]. How an error is shown is
//! the front end's business: `api/` maps it to its documented JSON bodies
//! and statuses, `ui/` to a status and a page, each in one place. So a new
//! admin action is one function here plus a thin handler per front end.

pub mod advice;
pub mod auth;
#[cfg(feature = "store")]
pub mod compare;
#[cfg(feature = "postgres")]
pub mod databases;
#[cfg(feature = "postgres")]
pub mod db_time;
#[cfg(feature = "postgres")]
mod error;
#[cfg(feature = "store")]
pub mod events;
#[cfg(feature = "postgres")]
pub mod explain;
#[cfg(feature = "postgres")]
pub mod growth;
#[cfg(feature = "postgres")]
pub mod maintenance;
#[cfg(feature = "postgres")]
pub mod signal;
pub mod slow_queries;

#[cfg(feature = "postgres")]
pub use error::ServiceError;

#[cfg(feature = "postgres")]
/// Which front end asked: the `source` field of the audit log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The JSON API.
    Api,
    /// The web pages.
    #[cfg_attr(not(feature = "ui"), allow(dead_code))]
    Ui,
}

#[cfg(feature = "postgres")]
impl Source {
    /// `api` or `ui`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Ui => "ui",
        }
    }
}
