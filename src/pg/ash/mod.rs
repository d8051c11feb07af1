//! Active session history (ASH): where a server's database time goes.
//!
//! pg_stat_statements says how long statements took in total, never what
//! they waited on, nor which endpoint sent them, nor when. Sampling
//! `pg_stat_activity` once a second and counting the active sessions
//! answers all three: a session seen active in N samples of one second
//! spent about N seconds in the database, and the samples' wait events
//! say on what. The average number of active sessions (AAS) over a range
//! is the database's load, comparable with its number of cores.
//!
//! - [`observation`]: one active session in one sample, and its wait
//!   class;
//! - [`ring`]: the samples kept in memory, bounded in bytes (the recent
//!   seconds whole, older ones rolled up into per-minute counts), and the
//!   answers read from them ([`answer`]);
//! - [`sampler`]: one task per server that samples `pg_stat_activity`
//!   into the ring on a kept, budgeted connection; [`sample`] makes its
//!   rows observations.

pub mod answer;
pub mod observation;
pub mod ring;
pub mod sample;
pub mod sampler;

pub use answer::{By, DbTime};
pub use observation::{Observation, StatementRef, WaitClass};
pub use ring::{AshRing, Limits, MinuteCount, MinuteCounts, RingStats, answer_minutes};
pub use sampler::{AshSamplers, SamplerState, SamplerStatus};
