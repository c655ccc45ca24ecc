//! `redis_node_manager`: parses flags, sets up logging (`RUST_LOG`), then runs a subcommand
//! or the daemon until SIGTERM or ctrl-c. Exit 0 after a clean shutdown, 2 on bad
//! configuration or startup.

use std::io::IsTerminal;

use clap::Parser;
use redis_failover_manager::{run, subcommand, Cli, Config};
use tracing_subscriber::EnvFilter;

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Parses the flags. `--help` and `--version` print as clap does (exit 0); a mistake is one
/// line in the program's own format, exit 2.
fn parse_flags() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("redis_node_manager: {}", clap_error_line(&e));
            std::process::exit(2);
        }
    }
}

/// clap's first line without its `error: `, then where to look.
fn clap_error_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("bad arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("{first}; see --help")
}

fn main() {
    let cli = parse_flags();
    // The daemon logs what it does; a subcommand only prints its result, so the libraries'
    // info lines (ZooKeeper sessions) would be noise there. RUST_LOG overrides both.
    let default_level = if cli.command.is_some() {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    if let Some(command) = &cli.command {
        std::process::exit(subcommand(&cli, command));
    }
    let config = match Config::load(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("redis_node_manager: {e}");
            std::process::exit(2);
        }
    };
    // One thread by default: the daemon mostly waits on sockets, and hand-offs between
    // threads cost more than the work at rest (measured in docs/benchmarks.md).
    let runtime = match config.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("redis_node_manager: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(config, shutdown_signal())) {
        eprintln!("redis_node_manager: {e}");
        std::process::exit(2);
    }
}
