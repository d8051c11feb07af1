//! The on-demand actions: what an operator asks of a watched database
//! through the API or the pages, run once per request rather than on the
//! readers' schedule — safe maintenance, EXPLAIN through the planner, the
//! permission self-check, and cancelling or terminating a backend.
//!
//! They sit apart from [`super::readers`] because each one either writes
//! (maintenance, signals) or runs on its own connection and deadline
//! (explain, the self-check), and none keeps a last pass.

pub mod explain;
pub mod maintenance;
pub mod self_check;
pub mod signal;
