//! The simulator's scenario file (TOML), documented in `docs/ga467-simulator.md`: the reader's
//! rate and protocol, named cards of any type with any field values, and a timeline of
//! placements, removals, unplug/replug, SW3 errors, corrupted, truncated, slow or missing replies
//! and line noise.

use std::collections::BTreeMap;
use std::time::Duration;

use ga467::card::{CardType, layout};
use ga467::command::Command;
use ga467::sim::{
    Action, FakeCard, Fault, FaultKind, Protocol, Scenario, Step, fake_cards_all_types,
    filler_photo,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "default_baud")]
    baud: u32,
    #[serde(default)]
    protocol: Option<String>,
    /// Restart the timeline after this many milliseconds.
    #[serde(default)]
    cycle_ms: Option<u64>,
    #[serde(default)]
    cards: BTreeMap<String, BTreeMap<String, toml::Value>>,
    #[serde(default)]
    at: Vec<Entry>,
}

fn default_baud() -> u32 {
    115_200
}

/// One `[[at]]` entry: a time and exactly one action (fault actions may name a command and a
/// count).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    ms: u64,
    place: Option<String>,
    remove: Option<bool>,
    unplug: Option<bool>,
    replug: Option<bool>,
    exit: Option<bool>,
    noise: Option<String>,
    sw3: Option<String>,
    corrupt: Option<bool>,
    additive_checksum: Option<bool>,
    truncate: Option<usize>,
    delay_ms: Option<u64>,
    silent: Option<bool>,
    command: Option<String>,
    times: Option<u32>,
}

/// Parses a scenario file's text. Errors name the entry or card and what is wrong.
pub fn parse(text: &str) -> Result<Scenario, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let protocol = match file.protocol.as_deref().unwrap_or("ga467") {
        "ga467" => Protocol::Ga467,
        "additive_checksum" => Protocol::AdditiveChecksum,
        "stx_etx" => Protocol::StxEtx,
        "all_bad_command" => Protocol::AllBadCommand,
        other => {
            return Err(format!(
                "protocol {other:?}: use ga467, additive_checksum, stx_etx or all_bad_command"
            ));
        }
    };
    let mut cards = BTreeMap::new();
    for (name, fields) in &file.cards {
        let card = card(fields).map_err(|e| format!("[cards.{name}]: {e}"))?;
        cards.insert(name.clone(), card);
    }
    let mut steps = Vec::new();
    for (i, entry) in file.at.iter().enumerate() {
        let action = action(entry, &cards)
            .map_err(|e| format!("[[at]] entry {} (ms = {}): {e}", i + 1, entry.ms))?;
        steps.push(Step {
            at: Duration::from_millis(entry.ms),
            action,
        });
    }
    Ok(Scenario {
        baud: file.baud,
        protocol,
        steps,
        cycle: file.cycle_ms.map(Duration::from_millis),
    }
    .sorted())
}

fn text_of(key: &str, value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        other => Err(format!("{key} must be text, found {}", other.type_str())),
    }
}

fn int_of(key: &str, value: &toml::Value) -> Result<u32, String> {
    value
        .as_integer()
        .and_then(|i| u32::try_from(i).ok())
        .ok_or_else(|| format!("{key} must be a non-negative integer"))
}

/// A card from its table: `type` (or `fake` = index of a built-in card to start from), layout
/// fields by their record names, and `photo_seed`, `fingerprints`, `appended_address`.
fn card(fields: &BTreeMap<String, toml::Value>) -> Result<FakeCard, String> {
    let base = match fields.get("fake") {
        Some(v) => {
            let i = int_of("fake", v)? as usize;
            let all = fake_cards_all_types();
            let len = all.len();
            let card = all.into_iter().nth(i);
            Some(card.ok_or_else(|| format!("fake = {i}: there are {len} built-in cards"))?)
        }
        None => None,
    };
    let card_type = match fields.get("type") {
        Some(v) => {
            let name = text_of("type", v)?;
            CardType::from_name(&name).ok_or_else(|| {
                format!(
                    "type {name:?}: use {}",
                    CardType::ALL.map(|t| t.as_str()).join(", ")
                )
            })?
        }
        None => match &base {
            Some(b) => CardType::detect(&b.text),
            None => return Err("needs `type` (or `fake`)".into()),
        },
    };
    let mut values: Vec<(String, String)> = match &base {
        Some(b) if CardType::detect(&b.text) == card_type => ga467::card::parse_text(&b.text)
            .map(|p| {
                p.fields()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut photo_seed = 1;
    let mut fingerprints = 0;
    let mut appended_address = None;
    for (key, value) in fields {
        match key.as_str() {
            "type" | "fake" => {}
            "photo_seed" => photo_seed = int_of(key, value)?,
            "fingerprints" => fingerprints = int_of(key, value)? as usize,
            "appended_address" => appended_address = Some(text_of(key, value)?),
            field => {
                let text = text_of(field, value)?;
                values.retain(|(k, _)| k != field);
                values.push((field.to_owned(), text));
            }
        }
    }
    let pairs: Vec<(&str, &str)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let text = layout::encode_fields(card_type, &pairs).map_err(|e| e.to_string())?;
    let photo = match (&base, fields.contains_key("photo_seed")) {
        (Some(b), false) => b.photo.clone(),
        _ => filler_photo(photo_seed),
    };
    let mut card = FakeCard::new(text, photo).with_fingerprints(fingerprints, photo_seed);
    card.appended_address = appended_address;
    Ok(card)
}

fn action(e: &Entry, cards: &BTreeMap<String, FakeCard>) -> Result<Action, String> {
    let command = match &e.command {
        Some(key) => Some(Command::from_key(key).ok_or_else(|| {
            format!(
                "command {key:?}: use one of {}",
                Command::ALL.map(|c| c.key()).join(", ")
            )
        })?),
        None => None,
    };
    let times = e.times.unwrap_or(1);
    let fault = |kind| {
        Action::Fault(Fault {
            command,
            kind,
            times,
        })
    };
    let mut actions = Vec::new();
    if let Some(name) = &e.place {
        let card = cards
            .get(name)
            .ok_or_else(|| format!("place {name:?}: no [cards.{name}]"))?;
        actions.push(Action::Place(Box::new(card.clone())));
    }
    if e.remove == Some(true) {
        actions.push(Action::Remove);
    }
    if e.unplug == Some(true) {
        actions.push(Action::Unplug);
    }
    if e.replug == Some(true) {
        actions.push(Action::Replug);
    }
    if e.exit == Some(true) {
        actions.push(Action::Exit);
    }
    if let Some(noise) = &e.noise {
        let bytes = match ga467::inspect::hex_text(noise.as_bytes()) {
            Some(r) => r?,
            None if noise.trim().is_empty() => Vec::new(),
            None => return Err(format!("noise {noise:?} is not hex bytes")),
        };
        actions.push(Action::Noise(bytes));
    }
    if let Some(sw3) = &e.sw3 {
        let code = u8::from_str_radix(sw3.trim_start_matches("0x"), 16)
            .map_err(|_| format!("sw3 {sw3:?} is not a hex byte (e.g. \"41\")"))?;
        actions.push(fault(FaultKind::Status(code)));
    }
    if e.corrupt == Some(true) {
        actions.push(fault(FaultKind::Corrupt));
    }
    if e.additive_checksum == Some(true) {
        actions.push(fault(FaultKind::AdditiveChecksum));
    }
    if let Some(n) = e.truncate {
        actions.push(fault(FaultKind::Truncate(n)));
    }
    if let Some(ms) = e.delay_ms {
        actions.push(fault(FaultKind::Delay(Duration::from_millis(ms))));
    }
    if e.silent == Some(true) {
        actions.push(fault(FaultKind::Silent));
    }
    let is_fault = matches!(actions.first(), Some(Action::Fault(_)));
    if (e.command.is_some() || e.times.is_some()) && !is_fault {
        return Err("command and times go with sw3, corrupt, additive_checksum, truncate, delay_ms or silent".into());
    }
    match actions.len() {
        1 => Ok(actions.remove(0)),
        0 => Err(
            "no action: use place, remove, unplug, replug, exit, noise, sw3, corrupt, \
                  additive_checksum, truncate, delay_ms or silent"
                .into(),
        ),
        _ => Err("more than one action in one entry; use one [[at]] per action".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ga467::card::{ParsedText, parse_text};

    #[test]
    fn the_documented_example_parses() {
        // The first ```toml block of the format's documentation.
        let doc = include_str!("../../../docs/ga467-simulator.md");
        let text = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a toml example in docs/ga467-simulator.md");
        let s = parse(text).unwrap();
        assert_eq!(s.baud, 115_200);
        assert!(s.steps.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(s.steps.iter().any(|s| matches!(s.action, Action::Unplug)));
    }

    #[test]
    fn cards_of_any_type_with_any_fields() {
        let s = parse(
            r#"
            baud = 9600
            [cards.y]
            type = "foreign_permanent_2023"
            name = "测试戊"
            name_en = "TESTPERSON, ALPHABETA GAMMADELTA EPSILON ZETA"
            id_number = "911124198502030026"
            sex = "2"
            fingerprints = 2
            [cards.b]
            fake = 1
            name = "测试改"
            appended_address = "北京市西城区测试街2号"
            [[at]]
            ms = 100
            place = "y"
            [[at]]
            ms = 50
            place = "b"
            "#,
        )
        .unwrap();
        assert_eq!(s.baud, 9600);
        let [first, second] = s.steps.as_slice() else {
            panic!("two steps")
        };
        let (Action::Place(b), Action::Place(y)) = (&first.action, &second.action) else {
            panic!("placements in time order")
        };
        let ParsedText::Foreign2023(t) = parse_text(&y.text).unwrap() else {
            panic!("Y card")
        };
        assert_eq!(t.name_en, "TESTPERSON, ALPHABETA GAMMADELTA EPSILON ZETA");
        assert_eq!(y.fingerprint.len(), 1024);
        let ParsedText::Resident(r) = parse_text(&b.text).unwrap() else {
            panic!("resident")
        };
        assert_eq!(r.name, "测试改");
        assert_eq!(
            r.birth_date, "20080815",
            "the rest comes from built-in card 1"
        );
        assert_eq!(b.appended_address.as_deref(), Some("北京市西城区测试街2号"));
    }

    #[test]
    fn faults_noise_and_device_events() {
        let s = parse(
            r#"
            protocol = "ga467"
            [[at]]
            ms = 0
            sw3 = "60"
            command = "sam_status"
            times = 3
            [[at]]
            ms = 0
            truncate = 600
            command = "read_text_photo"
            [[at]]
            ms = 0
            delay_ms = 1500
            [[at]]
            ms = 0
            noise = "00 FF 13"
            [[at]]
            ms = 10
            unplug = true
            [[at]]
            ms = 20
            replug = true
            [[at]]
            ms = 30
            exit = true
            "#,
        )
        .unwrap();
        let faults: Vec<&Fault> = s
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Fault(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(
            faults[0],
            &Fault {
                command: Some(Command::SamStatus),
                kind: FaultKind::Status(0x60),
                times: 3
            }
        );
        assert_eq!(faults[1].kind, FaultKind::Truncate(600));
        assert_eq!(faults[2].command, None);
        assert!(matches!(&s.steps[3].action, Action::Noise(n) if n == &[0x00, 0xFF, 0x13]));
    }

    #[test]
    fn errors_say_where_and_what() {
        let cases = [
            ("[[at]]\nms = 1\n", "entry 1 (ms = 1): no action"),
            (
                "[[at]]\nms = 1\nremove = true\nunplug = true\n",
                "more than one action",
            ),
            ("[[at]]\nms = 1\nplace = \"x\"\n", "no [cards.x]"),
            ("[[at]]\nms = 1\nsw3 = \"ZZ\"\n", "not a hex byte"),
            (
                "[[at]]\nms = 1\nsw3 = \"41\"\ncommand = \"find\"\n",
                "find_card",
            ),
            ("[[at]]\nms = 1\nremove = true\ntimes = 2\n", "go with sw3"),
            ("[cards.a]\ntype = \"passport\"\n", "hk_macau_taiwan"),
            (
                "[cards.a]\ntype = \"resident\"\nnationality = \"CAN\"\n",
                "[cards.a]: resident cards have no field `nationality`",
            ),
            ("[cards.a]\nname = \"x\"\n", "needs `type`"),
            ("[cards.a]\nfake = 9\n", "6 built-in cards"),
            ("protocol = \"hid\"\n", "additive_checksum"),
            ("bogus = 1\n", "bogus"),
        ];
        for (text, expected) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(expected), "{text:?}: {e}");
        }
    }
}
