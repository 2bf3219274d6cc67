use super::*;

const GOOD: &str = r#"
[station]
id = "window-03"
signing_key = "/etc/countersign/keys/station.jwk"

[crypto]
recipient_key = "/etc/countersign/case-system.pub.jwk"

[mqtt]
host = "broker.local"
port = 8883

[id_readers.desk]
port = "/dev/countersign/idcard"
baud = 9600

[mqtt.tls]
ca_file = "/etc/countersign/tls/broker-ca.pem"
"#;

fn err(text: &str) -> ConfigError {
    parse(text, Path::new("test.toml")).unwrap_err()
}

#[test]
fn good_config_parses_with_defaults() {
    let config = parse(GOOD, Path::new("test.toml")).unwrap();
    assert_eq!(config.station.id.as_str(), "window-03");
    assert_eq!(config.mqtt.port, 8883);
    assert_eq!(config.mqtt.inflight_records.get(), 16);
    assert_eq!(config.client_id(), "countersign-window-03");
    let desk = &config.id_readers[&StationId::try_from("desk".to_string()).unwrap()];
    assert_eq!(desk.baud, Baud(9600));
    assert_eq!(desk.poll_interval_ms.get(), 500);
    assert_eq!(
        config.station.outbox_path(),
        PathBuf::from("/var/lib/countersign/outbox.sqlite")
    );
}

#[test]
fn unknown_key_is_an_error_with_line_column_and_key() {
    let text = GOOD.replace("port = 8883", "port = 8883\nkeepalive = 5");
    let e = err(&text);
    assert!(e.message.contains("keepalive"), "{e}");
    assert_eq!(e.line, Some(12), "{e}");
    assert_eq!(e.column, Some(1), "{e}");
    assert_eq!(e.key.as_deref(), Some("mqtt.keepalive"), "{e}");
    assert!(
        e.to_string()
            .starts_with("test.toml:12:1: key `mqtt.keepalive`"),
        "{e}"
    );
}

#[test]
fn out_of_range_value_points_at_the_value() {
    let text = GOOD.replace("baud = 9600", "baud = 12345");
    let e = err(&text);
    assert_eq!(e.key.as_deref(), Some("id_readers.desk.baud"), "{e}");
    assert_eq!((e.line, e.column), (Some(15), Some(8)), "{e}");
    assert!(e.message.contains("115200"), "{e}");
}

#[test]
fn bad_station_id_and_wrong_type_are_located() {
    let e = err(&GOOD.replace("window-03", "window/03"));
    assert_eq!(e.key.as_deref(), Some("station.id"), "{e}");
    assert_eq!((e.line, e.column), (Some(3), Some(6)), "{e}");
    let e = err(&GOOD.replace("port = 8883", "port = \"8883\""));
    assert_eq!(e.key.as_deref(), Some("mqtt.port"), "{e}");
    assert_eq!((e.line, e.column), (Some(11), Some(8)), "{e}");
}

#[test]
fn missing_required_key_and_syntax_error() {
    let e = err("[station]\nid = \"a\"\n");
    assert!(e.message.contains("signing_key"), "{e}");
    let e = err("[station\nid = 1");
    assert_eq!(e.line, Some(1), "{e}");
}

#[test]
fn semantic_error_is_located_by_key() {
    let text = GOOD.replace("port = 8883", "port = 8883\npassword_file = \"/etc/pw\"");
    let e = err(&text);
    assert_eq!(e.key.as_deref(), Some("mqtt.password_file"), "{e}");
    assert_eq!((e.line, e.column), (Some(12), Some(1)), "{e}");
}

/// A main file and drop-ins in a temporary `/etc/countersign`-like directory.
fn with_dropins(dropins: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("countersign.toml");
    std::fs::write(&main, GOOD).unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    for (name, text) in dropins {
        std::fs::write(dir.path().join("conf.d").join(name), text).unwrap();
    }
    (dir, main)
}

#[test]
fn dropins_merge_in_lexical_order_and_add_devices() {
    let (_dir, main) = with_dropins(&[
        ("20-late.toml", "[mqtt]\nport = 8884\n"),
        (
            "10-early.toml",
            "[mqtt]\nport = 1\nhost = \"b2\"\n[folders.scan]\npath = \"/s\"\n",
        ),
        (".10-editor-temp.toml", "garbage ["),
        ("README", "not toml"),
    ]);
    let (config, files) = load_with_files(&main).unwrap();
    assert_eq!(config.mqtt.port, 8884, "the later file wins");
    assert_eq!(config.mqtt.host, "b2", "keys merge across files");
    assert_eq!(config.station.id.as_str(), "window-03");
    assert_eq!(config.folders.len(), 1);
    assert_eq!(config.id_readers.len(), 1);
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["countersign.toml", "10-early.toml", "20-late.toml"]);
}

#[test]
fn errors_in_dropins_name_the_dropin_line_column_and_key() {
    let (dir, main) = with_dropins(&[("10-a.toml", "# site\n[mqtt]\nkeep_alive_secs = 1\n")]);
    let e = load(&main).unwrap_err();
    assert_eq!(e.file, dir.path().join("conf.d/10-a.toml"), "{e}");
    assert_eq!((e.line, e.column), (Some(3), Some(19)), "{e}");
    assert_eq!(e.key.as_deref(), Some("mqtt.keep_alive_secs"), "{e}");

    // A check across keys, one from each file: located in the file that holds the key.
    let (dir, main) = with_dropins(&[("10-a.toml", "\n[mqtt]\npassword_file = \"/pw\"\n")]);
    let e = load(&main).unwrap_err();
    assert_eq!(e.file, dir.path().join("conf.d/10-a.toml"), "{e}");
    assert_eq!((e.line, e.column), (Some(3), Some(1)), "{e}");

    // A syntax error in a drop-in.
    let (dir, main) = with_dropins(&[("10-a.toml", "[mqtt\n")]);
    let e = load(&main).unwrap_err();
    assert_eq!(e.file, dir.path().join("conf.d/10-a.toml"), "{e}");
    assert_eq!(e.line, Some(1), "{e}");

    // Errors in the main file still point into the main file.
    let (_dir, main) = with_dropins(&[("10-a.toml", "[mqtt]\nport = 1\n")]);
    std::fs::write(&main, GOOD.replace("baud = 9600", "baud = 1")).unwrap();
    let e = load(&main).unwrap_err();
    assert_eq!(e.file, main, "{e}");
    assert_eq!((e.line, e.column), (Some(15), Some(8)), "{e}");
}

#[test]
fn a_device_defined_in_two_files_is_an_error() {
    let (dir, main) = with_dropins(&[("10-a.toml", "[id_readers.desk]\nport = \"/dev/y\"\n")]);
    let e = load(&main).unwrap_err();
    assert_eq!(e.file, dir.path().join("conf.d/10-a.toml"), "{e}");
    assert_eq!(e.key.as_deref(), Some("id_readers.desk"), "{e}");
    assert_eq!((e.line, e.column), (Some(1), Some(13)), "{e}");
    assert!(e.message.contains("countersign.toml:13:13"), "{e}");

    let (_dir, main) = with_dropins(&[("10-a.toml", "mqtt = 3\n")]);
    let e = load(&main).unwrap_err();
    assert!(e.message.contains("integer here but a table"), "{e}");
}

#[test]
fn effective_config_prints_defaults_and_parses_back() {
    let config = parse(GOOD, Path::new("test.toml")).unwrap();
    let text = to_toml(&config).unwrap();
    assert!(text.contains("checkpoint_every = 100"), "{text}");
    assert!(text.contains("baud = 9600"), "{text}");
    assert!(text.contains("[log]\nlevel = \"info\""), "{text}");
    let again = parse(&text, Path::new("printed.toml")).unwrap();
    assert_eq!(to_toml(&again).unwrap(), text);
}

#[test]
fn metrics_listen_is_loopback_only() {
    let ok = parse(
        &format!("{GOOD}\n[metrics]\nlisten = \"127.0.0.1:9464\"\n"),
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(ok.metrics.listen, Some("127.0.0.1:9464".parse().unwrap()));
    let e = err(&format!("{GOOD}\n[metrics]\nlisten = \"0.0.0.0:9464\"\n"));
    assert_eq!(e.key.as_deref(), Some("metrics.listen"), "{e}");
    assert!(e.message.contains("loopback"), "{e}");
    let e = err(&format!("{GOOD}\n[metrics]\nlisten = \"localhost\"\n"));
    assert_eq!(e.key.as_deref(), Some("metrics.listen"), "{e}");
}
