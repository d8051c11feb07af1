//! The history store's settings: where its file lives and how big it may
//! grow. The agent keeps history by default (in `./perfscope-data` unless
//! `PERFSCOPE_DATA_DIR` says otherwise); a host app keeps none unless it
//! sets the variable, so adding the library never writes files unasked.

use std::path::PathBuf;

use super::parse::int_in;
use super::{ConfigError, DEFAULT_STORE_MAX_BYTES, RawConfig};

/// The agent's data directory when `PERFSCOPE_DATA_DIR` is unset.
pub const DEFAULT_AGENT_DATA_DIR: &str = "perfscope-data";

/// Where history is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DataDir {
    /// `PERFSCOPE_DATA_DIR` unset: the agent's default, none for a host app.
    #[default]
    Unset,
    /// `PERFSCOPE_DATA_DIR=off`: in memory only.
    Off,
    /// This directory.
    Dir(PathBuf),
}

/// The history store's settings.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Where.
    pub data_dir: DataDir,
    /// The file's size cap, bytes.
    pub max_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: DataDir::Unset,
            max_bytes: DEFAULT_STORE_MAX_BYTES,
        }
    }
}

impl StoreConfig {
    /// The directory to keep history in, if any; `agent` applies the
    /// agent's default to an unset variable.
    pub fn dir(&self, agent: bool) -> Option<PathBuf> {
        match &self.data_dir {
            DataDir::Dir(dir) => Some(dir.clone()),
            DataDir::Unset if agent => Some(PathBuf::from(DEFAULT_AGENT_DATA_DIR)),
            DataDir::Unset | DataDir::Off => None,
        }
    }

    pub(super) fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let data_dir = match raw.data_dir.as_deref().map(str::trim) {
            None | Some("") => DataDir::Unset,
            Some("off") => DataDir::Off,
            Some(dir) if dir.chars().any(char::is_control) => {
                return Err(ConfigError::new(
                    "PERFSCOPE_DATA_DIR",
                    &dir.escape_debug().to_string(),
                    "expected a directory path without control characters, or off",
                ));
            }
            Some(dir) => DataDir::Dir(PathBuf::from(dir)),
        };
        Ok(Self {
            data_dir,
            max_bytes: int_in(
                "PERFSCOPE_STORE_MAX_BYTES",
                raw.store_max_bytes.as_deref(),
                1 << 20,
                1 << 40,
                DEFAULT_STORE_MAX_BYTES,
            )?,
        })
    }
}
