//! Command line of the `perfscope` binary: `serve` (the default), `openapi`
//! and `demo`. Only the shape of the command line lives here: the settings
//! themselves ([`ServeArgs`]: a flag and an environment variable of the
//! same name each) are generated from the table in
//! [`crate::config::settings`]; values arrive as text and are checked by
//! [`crate::config::RawConfig::validate`], so errors name the variable.

use clap::{Parser, Subcommand};

pub use crate::config::ServeArgs;

/// perfscope: performance monitoring for Poem/Tokio APIs on PostgreSQL.
#[derive(Parser, Debug)]
#[command(name = "perfscope", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the agent (the default).
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI spec as JSON and exit.
    Openapi,
    /// Run the agent on a throwaway Postgres with a demo app and workload
    /// (prints the URLs and the admin token).
    Demo(Box<ServeArgs>),
}
