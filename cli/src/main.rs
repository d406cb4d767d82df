//! `leads`: import a CSV or JSON file of any size into the lead-import API, watch it, get its
//! error report, cancel or retry it. docs/cli.md is the manual; `leads --help` the summary.

mod args;
mod auth;
mod client;
mod commands;
mod creator;
mod document;
mod events;
mod failure;
mod import;
mod progress;
mod split;
mod tracker;

use args::{Cli, Command};
use clap::{CommandFactory as _, Parser as _};
use events::{Event, Output};
use failure::Failure;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        // Written whole, so that a closed pipe (`leads completions bash | head`) is no panic.
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "leads", &mut script);
        let _ = std::io::stdout().write_all(&script);
        return ExitCode::SUCCESS;
    }
    let output = Output::new(cli.global.json || !std::io::stdout().is_terminal());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(failure::UNREACHABLE as u8);
        }
    };
    let code = match runtime.block_on(run(cli, output.clone())) {
        Ok(code) => code,
        Err(failure) => {
            report(&output, &failure);
            failure.exit_code()
        }
    };
    ExitCode::from(code as u8)
}

async fn run(cli: Cli, output: Output) -> Result<i32, Failure> {
    let auth = auth::Auth::from_args(&cli.global).await?;
    let client = client::Client::new(&cli.global.url, cli.global.retries, auth, output.clone())?;
    match cli.command {
        Command::Import(args) => import::run(client, output, args).await,
        Command::Status { import_id, watch } => {
            commands::status::run(&client, &output, &import_id, watch).await
        }
        Command::List { state, created_by } => {
            let created_by = creator::creator(created_by, client.auth().names_the_caller());
            commands::list::run(&client, &output, state.as_deref(), created_by.as_deref()).await
        }
        Command::Errors { import_id, csv } => {
            commands::errors::run(&client, &output, &import_id, csv.as_deref()).await
        }
        Command::Cancel { import_id } => commands::act::cancel(&client, &output, &import_id).await,
        Command::Retry { import_id, all } => {
            commands::act::retry(&client, &output, &import_id, all).await
        }
        Command::Completions { .. } => unreachable!("answered before the runtime starts"),
    }
}

/// A failure on standard error, and as an `error` event for a script.
fn report(output: &Output, failure: &Failure) {
    // The error takes the bar's place (the summary would have been below it).
    output.bar.finish_and_clear();
    let (title, detail) = failure.parts();
    output.event(&Event::Error {
        title: &title,
        detail: &detail,
    });
    eprintln!("error: {failure}");
}
