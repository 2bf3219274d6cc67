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
