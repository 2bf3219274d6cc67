//! Harness for the capture sources: SANE's `test` backend in a private config directory,
//! synthetic page frames as a UVC camera sends them (no Huffman tables), replay directories,
//! and stations fed by a replay camera or a scanner.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use countersign::imaging::testgen::{SceneOptions, scene};

use crate::harness::*;
use crate::harness_mqtt::rewrite_config;

/// A `SANE_CONFIG_DIR` whose `dll.conf` loads only the `test` backend (Debian ships it
/// commented out).
pub fn sane_config_dir(dir: &Path) -> PathBuf {
    let sane = dir.join("sane.d");
    std::fs::create_dir_all(&sane).unwrap();
    std::fs::write(sane.join("dll.conf"), "test\n").unwrap();
    assert!(
        Path::new("/usr/bin/scanimage").is_file(),
        "scanimage is missing: run ./scripts/test, which installs sane-utils"
    );
    sane
}

/// A `[scanners.<name>]` table on SANE's test scanner.
pub fn scanner_table(name: &str, sane: &Path, extra: &str) -> String {
    format!(
        "[scanners.{name}]\ndevice = \"test:0\"\nsane_config_dir = \"{}\"\nresolution = 75\n{extra}\n",
        sane.display()
    )
}

/// A camera frame of a synthetic page on a desk (or the empty desk), as a UVC camera sends
/// it: MJPEG without Huffman tables.
pub fn page_frame(seed: u64, empty: bool) -> Vec<u8> {
    let s = scene(
        seed,
        &SceneOptions {
            width: 1280,
            height: 960,
            empty,
            blur: Some(0.0),
            light: Some(1.0),
            ..SceneOptions::default()
        },
    );
    camera::frame::strip_huffman_tables(&s.jpeg)
}

/// A replay directory: one file per frame, played in name order.
pub fn replay_dir(dir: &Path, frames: &[(&str, Vec<u8>)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in frames {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    dir.to_path_buf()
}

/// A station configuration with only `tail` as its devices (no ID card reader).
pub fn capture_station(dir: &Path, broker_port: u16, tail: &str) -> StationSetup {
    let setup = setup_station(dir, broker_port, &dir.join("no-reader"));
    rewrite_config(&setup, "", 4, tail);
    setup
}

/// `countersign capture` with a configuration of `tail` devices; returns its output.
pub fn capture_cli(dir: &Path, tail: &str, args: &[&str]) -> Output {
    let setup = if dir.join("countersign.toml").is_file() {
        let config = dir.join("countersign.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let head = text
            .split("\n[cameras.")
            .next()
            .unwrap()
            .split("\n[scanners.")
            .next()
            .unwrap()
            .to_string();
        std::fs::write(&config, format!("{head}\n{tail}\n")).unwrap();
        config
    } else {
        capture_station(dir, free_port(), tail).config
    };
    Command::new(bin())
        .arg("capture")
        .arg("--config")
        .arg(&setup)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// stdout's JSON lines.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
