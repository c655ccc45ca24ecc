//! `redis_node_manager`: parses flags, sets up logging (`RUST_LOG`), runs the daemon until
//! SIGTERM or ctrl-c. Exit 0 after a clean shutdown, 2 on bad configuration or startup.

use std::io::IsTerminal;

use clap::Parser;
use redis_failover_manager::{run, Cli, Config};
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

/// `redis_node_manager failover`: 0 when done, 1 when refused or unanswered, 2 on bad input.
fn failover_command(cli: &Cli, to: Option<&str>, wait_secs: u64) -> i32 {
    let (zk, paths) = match redis_failover_manager::config::zk_target(cli) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("redis_node_manager failover: {e}");
            return 2;
        }
    };
    let to = match to
        .map(str::parse::<redis_failover_client::NodeAddr>)
        .transpose()
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("redis_node_manager failover: --to: {e}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("redis_node_manager failover: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let wait = std::time::Duration::from_secs(wait_secs);
    match runtime.block_on(redis_failover_manager::request_failover(
        &zk,
        &paths,
        to.as_ref(),
        wait,
    )) {
        Ok(msg) => {
            println!("{msg}");
            0
        }
        Err(e) => {
            eprintln!("redis_node_manager failover: {e}");
            1
        }
    }
}

/// `redis_node_manager status`: 0 when printed, 1 when ZooKeeper could not be read, 2 on
/// bad input.
fn status_command(cli: &Cli, json: bool) -> i32 {
    let (zk, paths) = match redis_failover_manager::config::zk_target(cli) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("redis_node_manager status: {e}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("redis_node_manager status: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(redis_failover_manager::status(&zk, &paths)) {
        Ok(report) if json => match serde_json::to_string_pretty(&report) {
            Ok(s) => {
                println!("{s}");
                0
            }
            Err(e) => {
                eprintln!("redis_node_manager status: {e}");
                1
            }
        },
        Ok(report) => {
            print!("{report}");
            0
        }
        Err(e) => {
            eprintln!("redis_node_manager status: {e}");
            1
        }
    }
}

/// `redis_node_manager pause` (`reason` given) / `resume`: 0 when written, 1 when ZooKeeper
/// could not be written, 2 on bad input.
fn pause_command(cli: &Cli, reason: Option<String>) -> i32 {
    let what = if reason.is_some() { "pause" } else { "resume" };
    let (zk, paths) = match redis_failover_manager::config::zk_target(cli) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("redis_node_manager {what}: {e}");
            return 2;
        }
    };
    let pause = reason.map(|reason| {
        redis_failover_client::PauseInfo::now(
            reason,
            format!(
                "{}@{}",
                std::env::var("USER").unwrap_or_else(|_| "?".into()),
                redis_failover_manager::config::hostname()
            ),
        )
    });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("redis_node_manager {what}: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(redis_failover_manager::set_pause(
        &zk,
        &paths,
        pause.as_ref(),
    )) {
        Ok(()) if pause.is_some() => {
            println!(
                "paused: no automatic failover for {} until `redis_node_manager resume`",
                paths.root()
            );
            0
        }
        Ok(()) => {
            println!("resumed: automatic failover is on for {}", paths.root());
            0
        }
        Err(e) => {
            eprintln!("redis_node_manager {what}: {e}");
            1
        }
    }
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match &cli.command {
        Some(redis_failover_manager::config::Command::Failover { to, wait_secs }) => {
            std::process::exit(failover_command(&cli, to.as_deref(), *wait_secs))
        }
        Some(redis_failover_manager::config::Command::Status { json }) => {
            std::process::exit(status_command(&cli, *json))
        }
        Some(redis_failover_manager::config::Command::Pause { reason }) => std::process::exit(
            pause_command(&cli, Some(reason.clone().unwrap_or_default())),
        ),
        Some(redis_failover_manager::config::Command::Resume) => {
            std::process::exit(pause_command(&cli, None))
        }
        None => {}
    }
    let config = match Config::load(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("redis_node_manager: {e}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
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
