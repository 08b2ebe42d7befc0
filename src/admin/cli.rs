//! `portcullis sessions list [--user NAME]`, `portcullis sessions revoke --user NAME|--all`:
//! the arguments (parsed without I/O), the table the list prints, and running a command
//! against the store the environment names. `main.rs` turns the outcome into an exit status.

use std::fmt::Write as _;

use super::{ended, Listed, Target};
use crate::config::Config;
use crate::session::{Store, StoreError};
use crate::telemetry::escape_controls;

pub const USAGE: &str = "\
Usage:
  portcullis sessions list [--user NAME]   list live sessions: all, or one user's
  portcullis sessions revoke --user NAME   end every session of one user
  portcullis sessions revoke --all         end every session

They read the server's environment (REDIS_URL and the rest) and act on the sessions in Redis,
so every replica refuses an ended session at its next auth check. NAME is the username, the
value of OIDC_USERNAME_CLAIM as in X-Auth-Request-User.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionsCommand {
    List(Target),
    Revoke(Target),
    Help,
}

/// Arguments that do not make a command; `main.rs` prints it with [`USAGE`] and exits 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// The arguments after `sessions`. Strict: anything not understood is refused rather than
/// guessed at, since a guess could end the wrong sessions.
pub fn parse(args: &[String]) -> Result<SessionsCommand, UsageError> {
    let (command, rest) = match args.split_first() {
        None => return Err(usage("a command is needed: list or revoke")),
        Some((command, rest)) => (command.as_str(), rest),
    };
    match command {
        "--help" | "-h" | "help" if rest.is_empty() => Ok(SessionsCommand::Help),
        "list" => match options(rest)? {
            Options {
                user: None,
                all: false,
            } => Ok(SessionsCommand::List(Target::All)),
            Options {
                user: Some(user),
                all: false,
            } => Ok(SessionsCommand::List(Target::User(user))),
            Options { all: true, .. } => Err(usage(
                "list takes --user NAME or nothing (all sessions), not --all",
            )),
        },
        "revoke" => match options(rest)? {
            Options {
                user: Some(user),
                all: false,
            } => Ok(SessionsCommand::Revoke(Target::User(user))),
            Options {
                user: None,
                all: true,
            } => Ok(SessionsCommand::Revoke(Target::All)),
            Options {
                user: None,
                all: false,
            } => Err(usage("revoke needs --user NAME or --all")),
            Options {
                user: Some(_),
                all: true,
            } => Err(usage("revoke takes --user NAME or --all, not both")),
        },
        other => Err(usage(format!("unknown sessions command {other:?}"))),
    }
}

#[derive(Default)]
struct Options {
    user: Option<String>,
    all: bool,
}

fn options(args: &[String]) -> Result<Options, UsageError> {
    let mut found = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let user = match arg.as_str() {
            "--all" if found.all => return Err(usage("--all is given twice")),
            "--all" => {
                found.all = true;
                continue;
            }
            "--user" => args.next().map(String::as_str),
            other => match other.strip_prefix("--user=") {
                Some(value) => Some(value),
                None => return Err(usage(format!("unknown argument {other:?}"))),
            },
        };
        // `--user --all` is a forgotten name, not a user called "--all".
        let user = user
            .filter(|name| !name.is_empty() && !name.starts_with("--"))
            .ok_or_else(|| usage("--user needs a NAME"))?;
        if found.user.is_some() {
            return Err(usage("--user is given twice"));
        }
        found.user = Some(user.to_string());
    }
    Ok(found)
}

/// Why a command could not run (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(
        "the sessions commands need Redis: none of REDIS_URL, REDIS_SENTINEL_URLS or \
         REDIS_CLUSTER_URLS is set, and without it every portcullis keeps its sessions in its \
         own memory, which another process cannot see. Set them as the servers have them."
    )]
    MemoryStore,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The store the servers share: the Redis the configuration names. Without it there is nothing a
/// separate process could list or end, so the command is refused rather than run on an
/// empty store of its own.
pub fn shared_store(config: &Config) -> Result<Store, CliError> {
    if config.store.redis.is_none() {
        return Err(CliError::MemoryStore);
    }
    Ok(Store::from_config(config)?)
}

/// Runs a command; returns what to print.
/// `providers`: the configured providers' names, so that `--user provider:user` names one
/// provider's user.
pub async fn run(
    command: &SessionsCommand,
    store: &Store,
    providers: &[&str],
    now: u64,
) -> Result<String, CliError> {
    match command {
        SessionsCommand::Help => Ok(format!("{USAGE}\n")),
        SessionsCommand::List(target) => {
            Ok(table(&super::list(store, target, providers, now).await?))
        }
        SessionsCommand::Revoke(target) => {
            let count = super::revoke(store, target, providers).await?;
            Ok(format!("{}\n", ended(count)))
        }
    }
}

const HEADINGS: [&str; 7] = [
    "USER",
    "PROVIDER SESSION",
    "CREATED",
    "LAST SEEN",
    "EXPIRES",
    "USER AGENT",
    "ADDRESS",
];

/// The sessions as aligned columns, times in UTC, `-` for what is not known. Values from the
/// IdP and the browser have their control characters escaped: a user agent must not be able
/// to move the cursor or write lines of its own in the operator's terminal.
pub fn table(rows: &[Listed]) -> String {
    if rows.is_empty() {
        return "no sessions\n".to_string();
    }
    let text = |value: Option<&str>| value.map_or("-".to_string(), |v| escape_controls(v).into());
    let time = |value: Option<u64>| value.map_or("-".to_string(), utc);
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|row| {
            [
                text(Some(&row.user)),
                text(row.idp_session.as_deref()),
                utc(row.created_at),
                time(row.last_seen),
                utc(row.expires_at),
                text(row.user_agent.as_deref()),
                text(row.address.as_deref()),
            ]
        })
        .collect();
    let mut widths = HEADINGS.map(|heading| heading.chars().count());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let headings = HEADINGS.map(str::to_string);
    for row in std::iter::once(&headings).chain(&cells) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{cell:width$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Unix seconds as `2026-12-01 20:11:33Z`.
pub fn utc(unix: u64) -> String {
    let (days, seconds) = (unix / 86_400, unix % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`,
/// for days on or after the epoch): eras of 400 years, each exactly 146,097 days, counted
/// from 0000-03-01 so that the leap day ends the year.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
