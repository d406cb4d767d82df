//! The command line: global options (where the API is, how to sign in, how to print) and one
//! subcommand per task. `leads --help` is generated from the doc comments here.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "leads", version, about = "Import leads from a file of any size and follow the import", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// The API's base URL (a stack's `ApiUrl` output works as is).
    #[arg(
        long,
        global = true,
        env = "LEADS_URL",
        default_value = "http://127.0.0.1:3000"
    )]
    pub url: String,
    /// A bearer token (JWT) for an API behind the JWT authorizer.
    #[arg(long, global = true, env = "LEADS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// How to authenticate: `none`, `token` (the default when a token is given) or `iam`
    /// (SigV4 with your AWS login: environment, profile, SSO).
    #[arg(long, global = true, value_enum)]
    pub auth: Option<AuthKind>,
    /// Same as `--auth iam`.
    #[arg(long, global = true, conflicts_with = "auth")]
    pub sigv4: bool,
    /// The API's AWS region for `--auth iam` (else the AWS configuration's).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Times a request is sent again after a network error or a busy answer (backoff from
    /// 0.5 s, doubling, at most 30 s apart).
    #[arg(long, global = true, default_value_t = 7)]
    pub retries: u32,
    /// One JSON line per event on standard output, even on a terminal.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthKind {
    None,
    Token,
    Iam,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a CSV or JSON file, in as many imports as it takes; run it again to resume.
    Import(ImportArgs),
    /// Show an import's status document.
    Status {
        import_id: String,
        /// Poll until the import ends.
        #[arg(long)]
        watch: bool,
    },
    /// List your imports, newest first.
    List {
        /// Only imports in this state (pending, processing, completed, failed, cancelled).
        #[arg(long)]
        state: Option<String>,
        /// Whose imports (else LEADS_CREATED_BY, else your user name; behind an authorizer,
        /// always the caller's).
        #[arg(long, env = "LEADS_CREATED_BY")]
        created_by: Option<String>,
    },
    /// Show an import's failed leads, or write them as CSV.
    Errors {
        import_id: String,
        /// Write the CSV report (the original values plus line, code and error) to FILE.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
    },
    /// Cancel an import: leads not yet stored fail with code `cancelled`.
    Cancel { import_id: String },
    /// Import again the leads of an import that failed for a transient reason.
    Retry {
        import_id: String,
        /// Every failed lead, not only the transient failures.
        #[arg(long)]
        all: bool,
    },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file: CSV (any other extension), or JSON (`.json`: an array of leads; `.jsonl`,
    /// `.ndjson`: one lead per line).
    pub file: PathBuf,
    /// What to do with a lead whose email is already stored (the server's default: fail).
    #[arg(long, value_enum)]
    pub on_existing: Option<OnExisting>,
    /// A CSV column for a field, `Header=field` (fields: fullName, firstName, lastName, email,
    /// phone, status, source); repeatable.
    #[arg(long, value_name = "HEADER=FIELD")]
    pub mapping: Vec<String>,
    /// Judge the file without importing it: nothing is stored.
    #[arg(long)]
    pub dry_run: bool,
    /// Who creates the import (else LEADS_CREATED_BY, else your user name; behind an
    /// authorizer, else the caller).
    #[arg(long, env = "LEADS_CREATED_BY")]
    pub created_by: Option<String>,
    /// Leads per import: at most the server's MAX_LEADS_PER_IMPORT.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub part_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnExisting {
    Fail,
    Skip,
    Update,
}

impl OnExisting {
    pub fn as_str(self) -> &'static str {
        match self {
            OnExisting::Fail => "fail",
            OnExisting::Skip => "skip",
            OnExisting::Update => "update",
        }
    }
}
