//! The active session history's settings: how often `pg_stat_activity` is
//! sampled (per server) and how many bytes the in-memory ring keeps. `0`
//! turns sampling off: no connection is kept and nothing is sampled.

use std::time::Duration;

use super::parse::int_in;
use super::{ConfigError, DEFAULT_ASH_INTERVAL_MS, DEFAULT_ASH_MEMORY, RawConfig};

/// ASH's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AshConfig {
    /// The sampling interval; `None` when ASH is off (`0`).
    pub interval: Option<Duration>,
    /// The ring's bytes (`PERFSCOPE_ASH_MEMORY`).
    pub max_bytes: usize,
}

impl Default for AshConfig {
    fn default() -> Self {
        Self {
            interval: Some(Duration::from_millis(DEFAULT_ASH_INTERVAL_MS)),
            max_bytes: DEFAULT_ASH_MEMORY,
        }
    }
}

impl AshConfig {
    pub(super) fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let interval = match raw.ash_interval.as_deref().map(str::trim) {
            None => DEFAULT_ASH_INTERVAL_MS,
            Some(value) => match value.parse::<u64>() {
                Ok(n) if n == 0 || (100..=60_000).contains(&n) => n,
                _ => {
                    return Err(ConfigError::new(
                        "PERFSCOPE_ASH_INTERVAL",
                        value,
                        "expected 0 (off) or milliseconds in 100..=60000",
                    ));
                }
            },
        };
        Ok(Self {
            interval: (interval > 0).then(|| Duration::from_millis(interval)),
            max_bytes: int_in(
                "PERFSCOPE_ASH_MEMORY",
                raw.ash_memory.as_deref(),
                64 << 10,
                1 << 30,
                DEFAULT_ASH_MEMORY,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_turns_ash_off_and_bad_values_name_the_variable() {
        let off = RawConfig {
            ash_interval: Some("0".into()),
            ..RawConfig::default()
        };
        assert_eq!(AshConfig::from_raw(&off).expect("0").interval, None);
        let default = AshConfig::from_raw(&RawConfig::default()).expect("default");
        assert_eq!(default.interval, Some(Duration::from_secs(1)));
        for bad in ["50", "soon", "61000"] {
            let raw = RawConfig {
                ash_interval: Some(bad.into()),
                ..RawConfig::default()
            };
            let error = AshConfig::from_raw(&raw).expect_err(bad).to_string();
            assert!(error.contains("PERFSCOPE_ASH_INTERVAL"), "{error}");
        }
        let tiny = RawConfig {
            ash_memory: Some("1000".into()),
            ..RawConfig::default()
        };
        assert!(AshConfig::from_raw(&tiny).is_err());
    }
}
