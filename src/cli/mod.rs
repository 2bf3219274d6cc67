//! The command line: one module per subcommand. Errors are reported here, once, in plain words.

mod capture;
mod check_config;
mod demo;
mod devices;
mod inspect;
mod keygen;
mod outbox;
mod process;
mod read_card;
mod read_document;
mod run;
mod session;
mod sim;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "countersign",
    version,
    about = "Service-counter evidence daemon: ID cards to signed records over MQTT 5"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, short, default_value = "/etc/countersign/countersign.toml")]
        config: PathBuf,
    },
    /// Validate the configuration (the file and its conf.d/*.toml drop-ins) and the keys it
    /// names, as the daemon does before it starts; exit 78 when anything is wrong.
    CheckConfig {
        #[arg(long, short, default_value = "/etc/countersign/countersign.toml")]
        config: PathBuf,
        /// Print the effective configuration (defaults and drop-ins merged) as TOML.
        #[arg(long)]
        print: bool,
        /// Check the files only, not the keys they name.
        #[arg(long)]
        no_environment: bool,
    },
    /// List serial ports, USB ID card readers, PC/SC readers, video devices and SANE
    /// scanners, and which configured devices are present.
    Devices {
        #[arg(long, short, default_value = "/etc/countersign/countersign.toml")]
        config: PathBuf,
    },
    /// Create a key pair in DIR: the station signing key (station.jwk, mode 0600, and
    /// station.pub.jwk), or with --recipient the case system's encryption key
    /// (case-system.jwk and case-system.pub.jwk). Never overwrites.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// Key algorithm: ed25519 (default), p256 or sm2 for a station; x25519 (default) or sm2
        /// with --recipient.
        #[arg(long, value_enum)]
        alg: Option<keygen::Alg>,
        /// Create the case system's encryption key instead of a station key.
        #[arg(long)]
        recipient: bool,
    },
    /// Verify records (and their blobs): signatures, decryption, blob hashes, and the chain over
    /// the whole set (gaps, forks, reorders, duplicates). Exits 1 when anything is wrong.
    Verify(verify::VerifyArgs),
    /// Open, close or cancel the running daemon's case session (local control socket).
    Session(session::SessionArgs),
    /// Read one ID card and print it as JSON (exit 3 no card, 4 no reader, 5 timeout,
    /// 6 protocol error).
    ReadCard(read_card::ReadCardArgs),
    /// Read a travel document (ePassport, exit-entry permit) from a PC/SC reader with its MRZ
    /// and print it as JSON, with passive authentication (exit 3 no card, 4 no reader, 5 access
    /// refused, 6 read failed, 7 not a travel document).
    ReadDocument(read_document::ReadDocumentArgs),
    /// Run the document pipeline on image files: find the page, correct its perspective, clean
    /// it, write JPEGs (and a PDF); one JSON object per input.
    Process(process::ProcessArgs),
    /// Capture a page from a configured camera or scanner (the feeder's pages with `feeder =
    /// true`), process it and write the JPEG(s) to DIR; one JSON object per page (exit 3 no such
    /// source, 4 busy, 5 no paper or no document, 6 device error).
    Capture(capture::CaptureArgs),
    /// Decode a captured device byte stream.
    #[command(subcommand)]
    Inspect(inspect::InspectCommand),
    /// Inspect the outbox: status, list, export dead letters, retry one.
    Outbox {
        #[arg(
            long,
            short,
            global = true,
            default_value = "/etc/countersign/countersign.toml"
        )]
        config: PathBuf,
        #[command(subcommand)]
        command: outbox::OutboxCommand,
    },
    /// Run a device simulator.
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Run the whole chain on this machine: broker, simulated reader, daemon, case system.
    Demo {
        /// Stop after this many delivered records.
        #[arg(long, default_value_t = 3)]
        cards: u32,
        /// Where to write the records and blobs as sent, the station's public key and the
        /// demo case system's key pair.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        /// Use the GM profile (SM2 signatures, SM2 key transport, SM4-GCM).
        #[arg(long)]
        gm: bool,
        /// Run a scenario instead: `marriage` (a case session driven by signed commands).
        #[arg(long, value_enum)]
        scenario: Option<demo::Scenario>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => run::run(&config),
        Command::CheckConfig {
            config,
            print,
            no_environment,
        } => check_config::run(
            &config,
            check_config::Options {
                print,
                no_environment,
            },
        ),
        Command::Devices { config } => devices::run(&config),
        Command::Keygen {
            out,
            alg,
            recipient,
        } => keygen::run(&out, alg, recipient),
        Command::Verify(args) => verify::run(args),
        Command::Session(args) => session::run(args),
        Command::ReadCard(args) => read_card::run(args),
        Command::ReadDocument(args) => read_document::run(args),
        Command::Process(args) => process::run(args),
        Command::Capture(args) => capture::run(args),
        Command::Inspect(command) => inspect::run(command),
        Command::Outbox { config, command } => outbox::run(&config, command),
        Command::Sim(sim) => sim::run(sim),
        Command::Demo {
            cards,
            out,
            gm,
            scenario,
        } => demo::run(cards, &out, gm, scenario),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("countersign: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
