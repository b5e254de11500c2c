//! `taskstream`: the self-hosted task manager in one binary.
#![forbid(unsafe_code)]

mod backup;
mod bench;
mod cluster;
mod config;
mod data_dir;
mod http_server;
mod jobs;
mod llm;
mod mcp;
mod serve;
mod shutdown;
mod task_cli;
mod token;
mod user;
mod webhook;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc instead of the C library's allocator: glibc keeps what a burst of connections
/// freed in per-thread arenas (the resident set stayed ~50 MiB above its level before a
/// 1,024-connection burst, for good); jemalloc's background thread gives freed pages back.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Self-hosted task manager with an AI assistant and an event stream, in one binary.
///
/// Configuration precedence: flags, then TASKSTREAM_* environment variables, then
/// taskstream.toml, then defaults.
#[derive(Debug, Parser)]
#[command(name = "taskstream", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything in one process: REST API, docs and metrics over HTTP, SQLite task store,
    /// durable event log with consumers and reminders, and the Fluvio-compatible listeners.
    /// With --mode cluster: one role of the Dapr deployment over a shared PostgreSQL.
    Serve(Box<config::ServeArgs>),
    /// Print an API token (HS256 JWT) for a user, signed with this instance's secret.
    Token(token::TokenArgs),
    /// Load-test a taskstream server and print throughput, latency and memory figures.
    Bench(bench::BenchArgs),
    /// Serve the task tools to a desktop AI client over stdio (Model Context Protocol), acting
    /// for one user; runs next to `serve` on the same data directory.
    Mcp(mcp::McpArgs),
    /// Manage the local accounts of the built-in web UI (add, list).
    User(user::UserArgs),
    /// Add, list and complete tasks from the shell in the quick-add language ("pay rent every
    /// month on the 1st at 9 #home !high"), through a running server's API (--url, --token)
    /// or straight on the data directory.
    Task(task_cli::TaskArgs),
    /// Write a user's tasks to a file: lossless JSON (import it into another data directory
    /// or account to get the same tasks), CSV, or iCalendar VTODOs.
    Export(task_cli::ExportArgs),
    /// Read tasks from a file: taskstream's JSON or CSV, iCalendar VTODOs, or a Todoist
    /// project's CSV export. All or nothing; re-importing a file creates nothing new.
    Import(task_cli::ImportArgs),
    /// Copy the data directory (tasks, event log, state, JWT secret) into a backup directory,
    /// consistently, also while the server runs and writes.
    Backup(backup::BackupArgs),
    /// Put a backup in place in a data directory; refuses while a server runs on it.
    Restore(backup::RestoreArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Token(args) => token::run(args),
            Command::Bench(args) => bench::run(args).await,
            Command::Mcp(args) => mcp::run(args).await,
            Command::User(args) => user::run(args).await,
            Command::Task(args) => task_cli::run(args).await,
            Command::Export(args) => task_cli::export(args).await,
            Command::Import(args) => task_cli::import(args).await,
            Command::Backup(args) => backup::backup(args).await,
            Command::Restore(args) => backup::restore(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
