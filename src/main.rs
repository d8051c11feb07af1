//! The `perfscope` agent: parse the configuration, set up logging, serve
//! until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use clap::Parser;
use perfscope::cli::{Cli, Command};
use perfscope::config::{Config, LogFormat, RawConfig};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Openapi) => {
            println!("{}", perfscope::api::spec_json());
            return ExitCode::SUCCESS;
        }
        Some(Command::Serve(args)) => *args,
        None => cli.serve,
    };
    let config: Config = match RawConfig::from(args).validate() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("perfscope: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("perfscope: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(perfscope::agent::serve(
        config,
        perfscope::agent::shutdown_signal(),
        |_| {},
    ));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(perfscope::agent::AgentError::Config(error)) => {
            eprintln!("perfscope: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("perfscope: {error}");
            ExitCode::FAILURE
        }
    }
}
