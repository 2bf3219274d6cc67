//! `countersign devices`: what this machine offers (serial ports, USB ID card readers, PC/SC
//! readers, cameras, SANE scanners) and which of the configured devices are there. Read-only:
//! nothing is opened except through pcscd and `scanimage -L`, so it is safe beside the daemon.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::config::{self, Config};

/// USB-serial bridges GA 467 readers are built on (vendor, product, chip).
const READER_BRIDGES: &[(u16, u16, &str)] = &[
    (0x1a86, 0x7523, "CH340"),
    (0x1a86, 0x55d4, "CH9102"),
    (0x10c4, 0xea60, "CP210x"),
    (0x0403, 0x6001, "FT232R"),
    (0x067b, 0x2303, "PL2303"),
];

/// GA 467 readers that are USB devices themselves.
const USB_READERS: &[(u16, u16, &str)] = &[(0x0400, 0xc35a, "GA 467 USB ID card reader")];

const SCANIMAGE_TIMEOUT: Duration = Duration::from_secs(20);

pub fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = if config_path.exists() {
        match config::load(config_path) {
            Ok(c) => Some(c),
            Err(e) => {
                println!("configuration: not used ({e})\n");
                None
            }
        }
    } else {
        println!(
            "configuration: {} not found; listing devices only\n",
            config_path.display()
        );
        None
    };
    let used = config.as_ref().map(used_paths).unwrap_or_default();

    println!("Serial ports");
    for line in serial_ports(&used) {
        println!("  {line}");
    }
    println!("USB ID card readers");
    for line in usb_readers() {
        println!("  {line}");
    }
    println!("PC/SC readers");
    let pcsc = pcsc_readers();
    match &pcsc {
        Ok(readers) if readers.is_empty() => println!("  (none)"),
        Ok(readers) => readers.iter().for_each(|r| println!("  {r}")),
        Err(e) => println!("  ({e})"),
    }
    println!("Video devices");
    for line in video_devices(&used) {
        println!("  {line}");
    }
    println!("SANE scanners");
    match sane_devices() {
        Ok(list) if list.is_empty() => println!("  (none)"),
        Ok(list) => list.iter().for_each(|s| println!("  {s}")),
        Err(e) => println!("  ({e})"),
    }
    if let Some(config) = &config {
        println!("Configured devices");
        let pcsc_names = pcsc.as_deref().ok();
        for (key, what, found) in configured(config, pcsc_names) {
            println!(
                "  {key:<32} {what:<40} {}",
                if found { "found" } else { "MISSING" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Device paths the configuration names, resolved through symlinks (udev names).
fn used_paths(config: &Config) -> BTreeSet<PathBuf> {
    config
        .id_readers
        .values()
        .filter_map(|r| std::fs::canonicalize(&r.port).ok())
        .collect()
}

fn in_use(path: &Path, used: &BTreeSet<PathBuf>) -> &'static str {
    match std::fs::canonicalize(path) {
        Ok(p) if used.contains(&p) => "  <- configured",
        _ => "",
    }
}

fn serial_ports(used: &BTreeSet<PathBuf>) -> Vec<String> {
    // serialport scans /sys/class/tty and panics when it is missing (containers without /sys).
    if !Path::new("/sys/class/tty").is_dir() {
        return vec!["(no /sys/class/tty: cannot enumerate)".into()];
    }
    let ports = match serialport::available_ports() {
        Ok(p) => p,
        Err(e) => return vec![format!("(cannot enumerate: {e})")],
    };
    let mut lines: Vec<String> = ports
        .into_iter()
        .map(|p| {
            let kind = match &p.port_type {
                serialport::SerialPortType::UsbPort(usb) => {
                    let bridge = READER_BRIDGES
                        .iter()
                        .find(|(v, d, _)| *v == usb.vid && *d == usb.pid)
                        .map(|(_, _, chip)| {
                            format!(", {chip} bridge: looks like an ID card reader")
                        })
                        .unwrap_or_default();
                    format!(
                        "usb {:04x}:{:04x} {}{bridge}",
                        usb.vid,
                        usb.pid,
                        usb.product.as_deref().unwrap_or("")
                    )
                }
                serialport::SerialPortType::PciPort => "pci".into(),
                serialport::SerialPortType::BluetoothPort => "bluetooth".into(),
                serialport::SerialPortType::Unknown => "on-board".into(),
            };
            format!(
                "{:<16} {kind}{}",
                p.port_name,
                in_use(Path::new(&p.port_name), used)
            )
        })
        .collect();
    if lines.is_empty() {
        lines.push("(none)".into());
    }
    lines
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_hex(path: &Path) -> Option<u16> {
    u16::from_str_radix(&read_trimmed(path)?, 16).ok()
}

fn usb_readers() -> Vec<String> {
    let mut lines = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/bus/usb/devices") {
        let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for dev in paths {
            let (Some(vid), Some(pid)) = (
                read_hex(&dev.join("idVendor")),
                read_hex(&dev.join("idProduct")),
            ) else {
                continue;
            };
            if let Some((_, _, what)) = USB_READERS.iter().find(|(v, p, _)| *v == vid && *p == pid)
            {
                let bus = read_trimmed(&dev.join("busnum")).unwrap_or_default();
                let devnum = read_trimmed(&dev.join("devnum")).unwrap_or_default();
                lines.push(format!(
                    "{vid:04x}:{pid:04x} {what} at /dev/bus/usb/{bus:0>3}/{devnum:0>3}"
                ));
            }
        }
    }
    if lines.is_empty() {
        lines.push("(none)".into());
    }
    lines
}

#[cfg(feature = "pcsc")]
fn pcsc_readers() -> Result<Vec<String>, String> {
    icao9303::pcsc::Watcher::new()
        .map(|w| w.readers())
        .map_err(|e| format!("pcscd: {e}"))
}

#[cfg(not(feature = "pcsc"))]
fn pcsc_readers() -> Result<Vec<String>, String> {
    Err("this build has no PC/SC support".into())
}

/// Video devices from /sys/class/video4linux. Index 0 of a USB camera is its capture node.
fn video_devices(used: &BTreeSet<PathBuf>) -> Vec<String> {
    let mut lines = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/class/video4linux") {
        let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for sys in paths {
            let Some(node) = sys.file_name().map(|n| Path::new("/dev").join(n)) else {
                continue;
            };
            let name = read_trimmed(&sys.join("name")).unwrap_or_default();
            let index = read_trimmed(&sys.join("index")).unwrap_or_default();
            // device -> the USB interface; its parent is the USB device.
            let usb = std::fs::canonicalize(sys.join("device"))
                .ok()
                .and_then(|iface| {
                    let dev = iface.parent()?.to_path_buf();
                    Some(format!(
                        " usb {:04x}:{:04x}",
                        read_hex(&dev.join("idVendor"))?,
                        read_hex(&dev.join("idProduct"))?
                    ))
                })
                .unwrap_or_default();
            let role = if index == "0" {
                "capture node"
            } else {
                "secondary node (metadata)"
            };
            lines.push(format!(
                "{:<14} \"{name}\"{usb}, {role}{}",
                node.display(),
                in_use(&node, used)
            ));
        }
    }
    if lines.is_empty() {
        lines.push("(none)".into());
    }
    lines
}

/// `scanimage -L`, bounded in time (a network scanner search can hang).
fn sane_devices() -> Result<Vec<String>, String> {
    let mut child = Command::new("scanimage")
        .arg("-L")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("scanimage not available: {e}; apt-get install sane-utils"))?;
    let deadline = Instant::now() + SCANIMAGE_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "scanimage -L gave no answer in {} s",
                    SCANIMAGE_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("scanimage -L: {e}")),
        }
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read as _;
        let _ = stdout.read_to_string(&mut out);
    }
    Ok(parse_scanimage_list(&out))
}

/// `device `test:0' is a Noname frontend-tester virtual device` → `test:0  Noname frontend-...`.
fn parse_scanimage_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("device `")?;
            let (name, what) = rest.split_once("' is a ")?;
            Some(format!("{name:<24} {what}"))
        })
        .collect()
}

/// (config key, what it names, found now).
fn configured(config: &Config, pcsc: Option<&[String]>) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for (name, reader) in &config.id_readers {
        out.push((
            format!("id_readers.{name}.port"),
            reader.port.display().to_string(),
            reader.port.exists(),
        ));
    }
    for (name, folder) in &config.folders {
        out.push((
            format!("folders.{name}.path"),
            folder.path.display().to_string(),
            folder.path.is_dir(),
        ));
    }
    if let Some(p) = &config.pcsc {
        for (name, reader) in &p.readers {
            let found = pcsc.is_some_and(|names| names.iter().any(|n| n.contains(&reader.matches)));
            out.push((
                format!("pcsc.readers.{name}.match"),
                format!("\"{}\"", reader.matches),
                found,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanimage_list_lines_are_parsed() {
        let text = "device `test:0' is a Noname frontend-tester virtual device\n\
                    device `escl:https://192.0.2.1:443' is a HP LaserJet MFP flatbed scanner\n\
                    \nNo scanners were identified.\n";
        let list = parse_scanimage_list(text);
        assert_eq!(list.len(), 2);
        assert!(list[0].starts_with("test:0 "), "{list:?}");
        assert!(list[1].contains("HP LaserJet"), "{list:?}");
    }
}
