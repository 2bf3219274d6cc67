use std::path::Path;
use std::process::ExitCode;

use crate::config::{self, EX_CONFIG};

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    match config::load(path) {
        Ok(config) => {
            println!(
                "{}: ok (station {}, broker {}:{}, {} ID card reader(s))",
                path.display(),
                config.station.id,
                config.mqtt.host,
                config.mqtt.port,
                config.id_readers.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("countersign: invalid configuration: {e}");
            Ok(ExitCode::from(EX_CONFIG as u8))
        }
    }
}
