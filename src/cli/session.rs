//! `countersign session open|close|cancel|status`: drives the running daemon's case session
//! through its local control socket (mobile kits and counters without a case system).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::commands::ResponseStatus;
use crate::config;

#[derive(Debug, Args)]
pub struct SessionArgs {
    /// The daemon's configuration (to find its control socket).
    #[arg(long, short, default_value = "/etc/countersign/countersign.toml")]
    config: PathBuf,
    /// The control socket, overriding the configuration.
    #[arg(long)]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Open a session for a case.
    Open {
        #[arg(long)]
        case_ref: String,
        #[arg(long)]
        operator: Option<String>,
        #[arg(long)]
        purpose: Option<String>,
    },
    /// Seal the open session into one record.
    Close,
    /// Discard the open session (nothing it captured is sent).
    Cancel {
        #[arg(long)]
        reason: Option<String>,
    },
    /// Show the open session and the station's sources.
    Status,
}

pub fn run(args: SessionArgs) -> anyhow::Result<ExitCode> {
    let socket = match args.socket {
        Some(s) => s,
        None => {
            let config = config::load(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?;
            config.station.control_socket(&config.session)
        }
    };
    let (command, request_args) = match args.action {
        Action::Open {
            case_ref,
            operator,
            purpose,
        } => (
            "open_session",
            json!({"case_ref": case_ref, "operator": operator, "purpose": purpose}),
        ),
        Action::Close => ("close_session", json!({})),
        Action::Cancel { reason } => ("cancel_session", json!({"reason": reason})),
        Action::Status => ("status", json!({})),
    };
    let response = match crate::station::control::request(&socket, command, request_args) {
        Ok(r) => r,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                "only members of the socket's group may use it: [session] control_socket_group, \
                 countersign-control in the package"
            } else {
                "is it running?"
            };
            eprintln!(
                "countersign: cannot reach the daemon at {}: {e} ({hint})",
                socket.display()
            );
            return Ok(ExitCode::from(2));
        }
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&response).context("response")?
    );
    Ok(match response.status {
        ResponseStatus::Accepted => ExitCode::SUCCESS,
        ResponseStatus::Rejected => ExitCode::FAILURE,
    })
}
