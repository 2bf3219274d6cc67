//! `countersign check-config`: the daemon's whole start-up validation without starting it, for
//! `ExecStartPre=`, `ExecReload=` and support staff. Files (main and `conf.d/*.toml` drop-ins):
//! syntax, types, ranges and checks across keys, each error with file:line:column and key; then
//! the environment the daemon needs before it can report ready (`service::preflight`: the keys
//! present, private and of the profile's types; the MQTT password file and TLS files; the
//! command keys; the hot folders there and writable). Devices that are not plugged in are only noted: the daemon waits
//! for them; plain TCP to a broker off loopback (`mqtt.allow_plain_tcp`) is a warning, and so are
//! answers that anyone could forge, or that no configured key can check (`[acks]`). Exit 78 (EX_CONFIG) when anything would stop the daemon from starting.

use std::path::Path;
use std::process::ExitCode;

use crate::config::{self, EX_CONFIG};
use crate::service;

pub struct Options {
    /// Print the effective configuration (defaults and drop-ins merged) as TOML.
    pub print: bool,
    /// Check the files only, not the keys they name (e.g. on another machine).
    pub no_environment: bool,
}

pub fn run(path: &Path, options: Options) -> anyhow::Result<ExitCode> {
    let (config, files) = match config::load_with_files(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("countersign: invalid configuration: {e}");
            return Ok(ExitCode::from(EX_CONFIG as u8));
        }
    };
    if options.print {
        let text = match config::to_toml(&config) {
            Ok(t) => t,
            Err(e) => anyhow::bail!("cannot print the configuration: {e}"),
        };
        println!("# countersign: effective configuration, defaults included, merged from:");
        for f in &files {
            println!("#   {}", f.display());
        }
        print!("{text}");
    }
    if !options.no_environment
        && let Err(problems) = service::preflight::check(&config)
    {
        for p in problems {
            eprintln!("countersign: {p}");
        }
        return Ok(ExitCode::from(EX_CONFIG as u8));
    }
    // Status goes to stderr when the configuration itself is on stdout.
    let report = |line: String| {
        if options.print {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    report(format!(
        "{}: ok (station {}, broker {}:{}, {} ID card reader(s), {} file(s){})",
        path.display(),
        config.station.id,
        config.mqtt.host,
        config.mqtt.port,
        config.id_readers.len(),
        files.len(),
        if options.no_environment {
            "; keys not checked"
        } else {
            ", keys ok"
        }
    ));
    if let Some(warning) = config.mqtt.plain_tcp_warning() {
        report(format!("warning: {warning}"));
    }
    match config.acks.check_line(&config.commands) {
        (line, true) => report(format!("warning: {line}")),
        (line, false) => report(line),
    }
    for (name, reader) in &config.id_readers {
        if !reader.port.exists() {
            report(format!(
                "note: id_readers.{name}.port: {} is not there now; the reader is picked up when it appears",
                reader.port.display()
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
