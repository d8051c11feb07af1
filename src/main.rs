//! The `perfscope` agent: parse the configuration, set up logging, serve
//! until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use clap::Parser;
use perfscope::cli::{Cli, Command};
use perfscope::config::{Config, LogFormat, RawConfig};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Logs go to stderr; colour codes only when stderr is a terminal (and
/// `NO_COLOR` is unset): a log file, a pipe or a log collector must get
/// plain text, not `\x1b[2m` escapes around every field.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[cfg(feature = "postgres")]
fn run_demo(runtime: &tokio::runtime::Runtime, config: Config) -> ExitCode {
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let ran = runtime.block_on(async {
        let shutdown = perfscope::agent::shutdown_signal();
        perfscope::demo::run(config, shutdown, |addr, token| {
            println!("perfscope demo is running (Ctrl-C to stop)");
            println!("  web pages:   {scheme}://{addr}/ui  (log in with the admin token)");
            println!("  Swagger UI:  {scheme}://{addr}/docs");
            println!("  stats:       {scheme}://{addr}/api/performance/stats");
            // Only a token the demo made up is shown: an operator's own
            // PERFSCOPE_ADMIN_TOKEN must not land in a terminal's scrollback
            // or a CI log.
            let (shown, bearer) = match token {
                Some(token) => (token.to_owned(), token.to_owned()),
                None => (
                    "the PERFSCOPE_ADMIN_TOKEN you set (not shown)".to_owned(),
                    "$PERFSCOPE_ADMIN_TOKEN".to_owned(),
                ),
            };
            println!("  admin token: {shown}");
            println!(
                "  try:         curl -H \"Authorization: Bearer {bearer}\" {scheme}://{addr}/api/performance/slow-queries"
            );
        })
        .await
    });
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("perfscope demo: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "postgres"))]
fn run_demo(_: &tokio::runtime::Runtime, _: Config) -> ExitCode {
    eprintln!("perfscope demo: built without the `postgres` feature");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (args, demo) = match cli.command {
        Some(Command::Openapi) => {
            // Written, not println!: a reader that stops early (`| head`)
            // closes the pipe, which is no failure of ours.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            return match writeln!(out, "{}", perfscope::api::spec_json()) {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("perfscope openapi: {error}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            };
        }
        Some(Command::Serve(args)) => (*args, false),
        Some(Command::Demo(args)) => (*args, true),
        None => (cli.serve, false),
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
    if demo {
        return run_demo(&runtime, config);
    }
    let served = runtime.block_on(async {
        let shutdown = perfscope::agent::shutdown_signal();
        perfscope::agent::serve(config, shutdown, |_| {}).await
    });
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
