//! Configuration text (the main file and drop-ins are written by administrators and package
//! tools; a damaged file must give an error naming the place, never a panic): `config::parse` on
//! any UTF-8 text, and on a valid minimal configuration with the fuzzer's text appended, so the
//! keys' own checks run as well as the TOML parser.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// A valid configuration (as in the config tests); appended text adds tables and keys to it.
const MINIMAL: &str = "[station]\nid = \"window-01\"\nsigning_key = \"/nonexistent/station.jwk\"\n\
[crypto]\nrecipient_key = \"/nonexistent/case-system.pub.jwk\"\n\
[mqtt]\nhost = \"127.0.0.1\"\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("/etc/countersign/countersign.toml");
    if let Err(e) = countersign::config::parse(text, file) {
        let _ = e.to_string();
    }
    let appended = format!("{MINIMAL}{text}");
    if let Err(e) = countersign::config::parse(&appended, file) {
        let _ = e.to_string();
    }
});
