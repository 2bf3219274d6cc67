//! Machine readable zones (Doc 9303 Parts 3–6): check digits, the BAC key's MRZ information, and
//! parsing of TD1 (3×30), TD2 (2×36), TD3 (2×44) and the Chinese exit-entry permits' 3×30
//! layout (`CS`, `CD`), whose field order differs from TD1 (icao9303.md §4).
//!
//! Parsing is total: a check digit that does not match is reported as a failed check, never
//! corrected, and text of the wrong shape is an error naming what is wrong.

use std::fmt;

/// The check digit of `field` (weights 7, 3, 1; `<` = 0, `A` = 10 … `Z` = 35); `None` when the
/// field holds a character outside the MRZ alphabet.
pub fn check_digit(field: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (i, c) in field.bytes().enumerate() {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            b'<' => 0,
            _ => return None,
        };
        sum += v * [7, 3, 1][i % 3];
    }
    Some((sum % 10) as u8)
}

fn check_char(field: &str) -> char {
    check_digit(field).map_or('<', |d| char::from(b'0' + d))
}

/// The three MRZ fields BAC (and PACE with the MRZ) keys are derived from.
#[derive(Clone, PartialEq, Eq)]
pub struct MrzKey {
    /// As printed, without padding (`L898902C`, `C12345678`); may exceed 9 characters (TD1).
    pub document_number: String,
    /// `YYMMDD`.
    pub birth_date: String,
    /// `YYMMDD`.
    pub expiry_date: String,
}

impl fmt::Debug for MrzKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are personal data: logs see a masked number only.
        write!(f, "MrzKey({})", mask(&self.document_number))
    }
}

/// `L89****2C`: first three and last two characters.
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 5 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 3 || i + 2 >= chars.len() {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// A key field that is not usable, with the field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MrzError {
    #[error("{field}: {problem}")]
    Field {
        field: &'static str,
        problem: String,
    },
    #[error("MRZ text: {0}")]
    Shape(String),
}

fn field_error(field: &'static str, problem: impl Into<String>) -> MrzError {
    MrzError::Field {
        field,
        problem: problem.into(),
    }
}

fn valid_yymmdd(s: &str) -> bool {
    s.len() == 6
        && s.bytes().all(|b| b.is_ascii_digit())
        && (1..=12).contains(&s[2..4].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&s[4..6].parse::<u8>().unwrap_or(0))
}

impl MrzKey {
    /// From the three fields as a clerk types them: the number as printed (spaces and `<`
    /// ignored at the end, letters upper-cased), dates as `YYMMDD` or `YYYY-MM-DD`.
    pub fn new(document_number: &str, birth: &str, expiry: &str) -> Result<MrzKey, MrzError> {
        let number: String = document_number
            .trim()
            .trim_end_matches('<')
            .to_ascii_uppercase();
        if number.is_empty() || number.len() > 22 {
            return Err(field_error("document number", "must be 1 to 22 characters"));
        }
        if check_digit(&number).is_none() {
            return Err(field_error(
                "document number",
                "only letters A-Z, digits and '<' are allowed",
            ));
        }
        let date = |field: &'static str, s: &str| -> Result<String, MrzError> {
            let s = s.trim();
            let compact: String = if s.len() == 10 && s.is_ascii() && s.as_bytes()[4] == b'-' {
                format!("{}{}{}", &s[2..4], &s[5..7], &s[8..10])
            } else {
                s.to_string()
            };
            if valid_yymmdd(&compact) {
                Ok(compact)
            } else {
                // The rule, not the value: this text reaches logs and command refusals.
                Err(field_error(
                    field,
                    "not a date (use YYMMDD or YYYY-MM-DD, month 01-12, day 01-31)",
                ))
            }
        };
        Ok(MrzKey {
            document_number: number,
            birth_date: date("birth date", birth)?,
            expiry_date: date("expiry date", expiry)?,
        })
    }

    /// `MRZ_information`: the number padded with `<` to 9 characters and its check digit, then
    /// birth and expiry dates with theirs (Doc 9303-11 §9.7.2). A TD1 number over 9 characters
    /// is used whole, with its own check digit.
    pub fn mrz_information(&self) -> String {
        let mut number = self.document_number.clone();
        while number.len() < 9 {
            number.push('<');
        }
        format!(
            "{number}{}{}{}{}{}",
            check_char(&number),
            self.birth_date,
            check_char(&self.birth_date),
            self.expiry_date,
            check_char(&self.expiry_date)
        )
    }

    /// From MRZ text as printed on the data page (lines separated by newlines or not at all):
    /// any layout [`Mrz::parse`] knows.
    pub fn from_mrz_text(text: &str) -> Result<MrzKey, MrzError> {
        let mrz = Mrz::parse(text)?;
        MrzKey::new(&mrz.document_number, &mrz.birth_date, &mrz.expiry_date)
    }
}

/// The MRZ layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MrzFormat {
    /// 3 lines of 30: ID cards.
    Td1,
    /// 2 lines of 36.
    Td2,
    /// 2 lines of 44: passports.
    Td3,
    /// 3 lines of 30 in the order of the Chinese exit-entry permits (`CS` Hong Kong/Macau,
    /// `CD` Taiwan): number, expiry, then birth date.
    ChinaExitEntry,
}

impl MrzFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            MrzFormat::Td1 => "TD1",
            MrzFormat::Td2 => "TD2",
            MrzFormat::Td3 => "TD3",
            MrzFormat::ChinaExitEntry => "CS/CD",
        }
    }
}

/// One check digit of the MRZ and whether it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrzCheck {
    /// `document_number`, `birth_date`, `expiry_date`, `personal_number`, `composite`.
    pub field: &'static str,
    /// `Some(true)` matched, `Some(false)` did not, `None` cannot be decided (a rule not
    /// confirmed for this layout, or a character outside the alphabet).
    pub ok: Option<bool>,
}

/// A parsed MRZ. Text fields keep the MRZ's characters with fillers turned into spaces where
/// they separate words; dates stay `YYMMDD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mrz {
    pub format: MrzFormat,
    /// The lines as read.
    pub lines: Vec<String>,
    /// `P`, `PO`, `I`, `CS`, `CD`...
    pub document_code: String,
    /// Alpha-3 (`UTO`, `CHN`); D for Germany is `D<<` in the MRZ and `D` here.
    pub issuing_state: String,
    pub document_number: String,
    /// `YYMMDD`.
    pub birth_date: String,
    /// `M`, `F`, `X` or `<` (unspecified).
    pub sex: String,
    /// `YYMMDD`.
    pub expiry_date: String,
    pub nationality: String,
    /// Primary identifier (surname), words separated by spaces.
    pub surname: String,
    /// Secondary identifier (given names).
    pub given_names: String,
    /// Optional data / personal number, fillers trimmed.
    pub optional_data: String,
    /// CS/CD: the 12-character encoded Chinese name of line 2, as printed.
    pub encoded_name: Option<String>,
    pub checks: Vec<MrzCheck>,
}

fn strip(s: &str) -> String {
    s.trim_end_matches('<').replace('<', " ").trim().to_string()
}

fn names(field: &str) -> (String, String) {
    let field = field.trim_end_matches('<');
    match field.split_once("<<") {
        Some((surname, given)) => (strip(surname), strip(given)),
        None => (strip(field), String::new()),
    }
}

fn digit_check(field: &'static str, value: &str, check: &str) -> MrzCheck {
    let ok = match (check_digit(value), check.as_bytes()) {
        (Some(d), [c]) if c.is_ascii_digit() => Some(*c - b'0' == d),
        // `<` as a check digit is allowed for an empty optional field.
        (Some(_), [b'<']) if value.bytes().all(|b| b == b'<') => Some(true),
        (Some(_), _) => Some(false),
        (None, _) => None,
    };
    MrzCheck { field, ok }
}

impl Mrz {
    /// Parses MRZ text: whitespace between lines is ignored, the layout follows from the total
    /// length (72 = TD2, 88 = TD3, 90 = TD1 or, starting `CS`/`CD`, the permits' layout).
    pub fn parse(text: &str) -> Result<Mrz, MrzError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if let Some(position) = compact
            .chars()
            .position(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<'))
        {
            // Where, not which: the character may be part of a name.
            return Err(MrzError::Shape(format!(
                "character {} (not counting spaces) is not in the MRZ alphabet (A-Z, 0-9, <)",
                position + 1
            )));
        }
        match compact.len() {
            90 if compact.starts_with("CS") || compact.starts_with("CD") => {
                Ok(Self::china_exit_entry(&compact))
            }
            90 => Ok(Self::td1(&compact)),
            72 => Ok(Self::td2(&compact)),
            88 => Ok(Self::td3(&compact)),
            n => Err(MrzError::Shape(format!(
                "{n} characters; expected 90 (TD1 or CS/CD), 72 (TD2) or 88 (TD3)"
            ))),
        }
    }

    fn lines(s: &str, width: usize) -> Vec<String> {
        s.as_bytes()
            .chunks(width)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    }

    fn td1(s: &str) -> Mrz {
        let l = Self::lines(s, 30);
        let (l1, l2, l3) = (&l[0], &l[1], &l[2]);
        // A number over 9 characters: `<` in the check position, the rest in the optional data,
        // ending with its own check digit.
        let (number, number_check, optional1) = if &l1[14..15] == "<" && &l1[15..16] != "<" {
            let rest = l1[15..30].trim_end_matches('<');
            let (more, check) = rest.split_at(rest.len().saturating_sub(1));
            (
                format!("{}{more}", &l1[5..14]),
                check.to_string(),
                String::new(),
            )
        } else {
            (
                l1[5..14].to_string(),
                l1[14..15].to_string(),
                l1[15..30].to_string(),
            )
        };
        let (surname, given_names) = names(l3);
        let composite_input = format!("{}{}{}{}", &l1[5..30], &l2[0..7], &l2[8..15], &l2[18..29]);
        let optional = format!("{}{}", strip(&optional1), strip(&l2[18..29]));
        Mrz {
            format: MrzFormat::Td1,
            document_code: strip(&l1[0..2]),
            issuing_state: strip(&l1[2..5]),
            document_number: strip(&number),
            birth_date: l2[0..6].to_string(),
            sex: l2[7..8].to_string(),
            expiry_date: l2[8..14].to_string(),
            nationality: strip(&l2[15..18]),
            surname,
            given_names,
            optional_data: optional.trim().to_string(),
            encoded_name: None,
            checks: vec![
                digit_check("document_number", &number, &number_check),
                digit_check("birth_date", &l2[0..6], &l2[6..7]),
                digit_check("expiry_date", &l2[8..14], &l2[14..15]),
                digit_check("composite", &composite_input, &l2[29..30]),
            ],
            lines: l,
        }
    }

    /// TD2 and TD3 share the second line's layout up to the optional data.
    fn two_line(s: &str, width: usize, format: MrzFormat) -> Mrz {
        let l = Self::lines(s, width);
        let (l1, l2) = (&l[0], &l[1]);
        let (surname, given_names) = names(&l1[5..]);
        let last = width - 1;
        let mut checks = vec![
            digit_check("document_number", &l2[0..9], &l2[9..10]),
            digit_check("birth_date", &l2[13..19], &l2[19..20]),
            digit_check("expiry_date", &l2[21..27], &l2[27..28]),
        ];
        let (optional, composite_input) = match format {
            MrzFormat::Td3 => {
                checks.push(digit_check("personal_number", &l2[28..42], &l2[42..43]));
                (
                    l2[28..42].to_string(),
                    format!("{}{}{}", &l2[0..10], &l2[13..20], &l2[21..43]),
                )
            }
            _ => (
                l2[28..35].to_string(),
                format!("{}{}{}", &l2[0..10], &l2[13..20], &l2[21..35]),
            ),
        };
        checks.push(digit_check("composite", &composite_input, &l2[last..width]));
        Mrz {
            format,
            document_code: strip(&l1[0..2]),
            issuing_state: strip(&l1[2..5]),
            document_number: strip(&l2[0..9]),
            birth_date: l2[13..19].to_string(),
            sex: l2[20..21].to_string(),
            expiry_date: l2[21..27].to_string(),
            nationality: strip(&l2[10..13]),
            surname,
            given_names,
            optional_data: strip(&optional),
            encoded_name: None,
            checks,
            lines: l,
        }
    }

    fn td2(s: &str) -> Mrz {
        Self::two_line(s, 36, MrzFormat::Td2)
    }

    fn td3(s: &str) -> Mrz {
        Self::two_line(s, 44, MrzFormat::Td3)
    }

    /// The permits' 3×30 layout as countersign reads it (icao9303.md §4; the printed layout is
    /// unconfirmed, so the composite rule is reported as undecided when it does not match):
    /// line 1 `CS` ‖ card number (9) ‖ check ‖ `<` ‖ expiry ‖ check ‖ `<` ‖ birth ‖ check ‖ `<` ‖
    /// composite; line 2 the encoded Chinese name (12) ‖ pinyin name (18, `SURNAME<<GIVEN`);
    /// line 3 sex and the endorsement data.
    fn china_exit_entry(s: &str) -> Mrz {
        let l = Self::lines(s, 30);
        let (l1, l2, l3) = (&l[0], &l[1], &l[2]);
        let (surname, given_names) = names(&l2[12..30]);
        let composite_input = format!("{}{}{}", &l1[2..12], &l1[13..20], &l1[21..28]);
        let mut composite = digit_check("composite", &composite_input, &l1[29..30]);
        if composite.ok == Some(false) {
            composite.ok = None;
        }
        let sex = match &l3[0..1] {
            s @ ("M" | "F") => s.to_string(),
            _ => "<".to_string(),
        };
        Mrz {
            format: MrzFormat::ChinaExitEntry,
            document_code: l1[0..2].to_string(),
            issuing_state: "CHN".into(),
            document_number: strip(&l1[2..11]),
            birth_date: l1[21..27].to_string(),
            sex,
            expiry_date: l1[13..19].to_string(),
            nationality: "CHN".into(),
            surname,
            given_names,
            optional_data: strip(&l3[1..30]),
            encoded_name: Some(l2[0..12].to_string()),
            checks: vec![
                digit_check("document_number", &l1[2..11], &l1[11..12]),
                digit_check("expiry_date", &l1[13..19], &l1[19..20]),
                digit_check("birth_date", &l1[21..27], &l1[27..28]),
                composite,
            ],
            lines: l,
        }
    }

    /// The BAC key of this MRZ.
    pub fn key(&self) -> Result<MrzKey, MrzError> {
        MrzKey::new(&self.document_number, &self.birth_date, &self.expiry_date)
    }
}

/// Builds MRZ text for test documents and the emulator (check digits computed).
pub mod build {
    use super::check_char;

    fn fit(s: &str, width: usize) -> String {
        let mut out: String = s.chars().take(width).collect();
        while out.len() < width {
            out.push('<');
        }
        out
    }

    fn name_field(surname: &str, given: &str, width: usize) -> String {
        let name = format!("{}<<{}", surname.replace(' ', "<"), given.replace(' ', "<"));
        fit(&name, width)
    }

    /// The fields of a test document.
    #[derive(Debug, Clone)]
    pub struct Fields<'a> {
        pub code: &'a str,
        pub state: &'a str,
        pub number: &'a str,
        pub nationality: &'a str,
        pub birth: &'a str,
        pub sex: &'a str,
        pub expiry: &'a str,
        pub surname: &'a str,
        pub given: &'a str,
        pub optional: &'a str,
    }

    /// Two lines of 44.
    pub fn td3(f: &Fields) -> String {
        let l1 = fit(
            &format!(
                "{}{}{}",
                fit(f.code, 2),
                fit(f.state, 3),
                name_field(f.surname, f.given, 39)
            ),
            44,
        );
        let number = fit(f.number, 9);
        let personal = fit(f.optional, 14);
        let personal_check = if f.optional.is_empty() {
            '<'
        } else {
            check_char(&personal)
        };
        let part1 = format!("{number}{}", check_char(&number));
        let birth = format!("{}{}", f.birth, check_char(f.birth));
        let expiry = format!("{}{}", f.expiry, check_char(f.expiry));
        let tail = format!("{personal}{personal_check}");
        let composite = check_char(&format!("{part1}{birth}{expiry}{tail}"));
        let l2 = format!(
            "{part1}{}{birth}{}{expiry}{tail}{composite}",
            fit(f.nationality, 3),
            fit(f.sex, 1)
        );
        format!("{l1}\n{l2}")
    }

    /// Three lines of 30 (numbers up to 9 characters).
    pub fn td1(f: &Fields) -> String {
        let number = fit(f.number, 9);
        let l1 = format!(
            "{}{}{number}{}{}",
            fit(f.code, 2),
            fit(f.state, 3),
            check_char(&number),
            fit(f.optional, 15)
        );
        let birth = format!("{}{}", f.birth, check_char(f.birth));
        let expiry = format!("{}{}", f.expiry, check_char(f.expiry));
        let optional2 = fit("", 11);
        let composite = check_char(&format!("{}{birth}{expiry}{optional2}", &l1[5..30]));
        let l2 = format!(
            "{birth}{}{expiry}{}{optional2}{composite}",
            fit(f.sex, 1),
            fit(f.nationality, 3)
        );
        let l3 = name_field(f.surname, f.given, 30);
        format!("{l1}\n{l2}\n{l3}")
    }

    /// The permits' 3×30 layout ([`super::MrzFormat::ChinaExitEntry`]); `encoded_name` is the
    /// 12-character line-2 prefix.
    pub fn china_exit_entry(f: &Fields, encoded_name: &str) -> String {
        let number = fit(f.number, 9);
        let n = format!("{number}{}", check_char(&number));
        let e = format!("{}{}", f.expiry, check_char(f.expiry));
        let b = format!("{}{}", f.birth, check_char(f.birth));
        let composite = check_char(&format!("{n}{e}{b}"));
        let l1 = format!("{}{n}<{e}<{b}<{composite}", fit(f.code, 2));
        let l2 = format!(
            "{}{}",
            fit(encoded_name, 12),
            name_field(f.surname, f.given, 18)
        );
        let l3 = fit(&format!("{}{}", fit(f.sex, 1), f.optional), 30);
        format!("{l1}\n{l2}\n{l3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doc 9303-11 Appendix D.2.
    #[test]
    fn mrz_information_of_the_worked_example() {
        let key = MrzKey::new("L898902C", "690806", "940623").unwrap();
        assert_eq!(key.mrz_information(), "L898902C<369080619406236");
        let key = MrzKey::new("l898902c<", "1969-08-06", " 940623").unwrap();
        assert_eq!(key.mrz_information(), "L898902C<369080619406236");
        assert!(MrzKey::new("", "690806", "940623").is_err());
        assert!(MrzKey::new("L8989-02", "690806", "940623").is_err());
        // Not ASCII, ten bytes, '-' at byte 4: an error, not a panic on a char boundary.
        assert!(MrzKey::new("L898902C", "1990-0é01", "940623").is_err());
        assert!(MrzKey::new("L898902C", "六九〇八〇六", "940623").is_err());
        let e = MrzKey::new("L898902C", "691306", "940623").unwrap_err();
        assert!(e.to_string().starts_with("birth date"), "{e}");
        assert_eq!(
            format!("{key:?}"),
            "MrzKey(L89***02C)".replace("***02C", "***2C")
        );
    }

    /// The specimen MRZs of Doc 9303 Parts 4, 5 and 6.
    #[test]
    fn td3_td2_td1_specimens() {
        let td3 = Mrz::parse(
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10",
        )
        .unwrap();
        assert_eq!(td3.format, MrzFormat::Td3);
        assert_eq!(td3.document_number, "L898902C3");
        assert_eq!(td3.surname, "ERIKSSON");
        assert_eq!(td3.given_names, "ANNA MARIA");
        assert_eq!(
            (td3.birth_date.as_str(), td3.expiry_date.as_str()),
            ("740812", "120415")
        );
        assert_eq!(td3.sex, "F");
        assert_eq!(td3.optional_data, "ZE184226B");
        assert!(
            td3.checks.iter().all(|c| c.ok == Some(true)),
            "{:?}",
            td3.checks
        );

        let td2 = Mrz::parse(
            "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nD231458907UTO7408122F1204159<<<<<<<6",
        )
        .unwrap();
        assert_eq!(td2.format, MrzFormat::Td2);
        assert_eq!(td2.document_number, "D23145890");
        assert!(
            td2.checks.iter().all(|c| c.ok == Some(true)),
            "{:?}",
            td2.checks
        );

        let td1 = Mrz::parse(
            "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<",
        )
        .unwrap();
        assert_eq!(td1.format, MrzFormat::Td1);
        assert_eq!(td1.document_number, "D23145890");
        assert_eq!(td1.nationality, "UTO");
        assert!(
            td1.checks.iter().all(|c| c.ok == Some(true)),
            "{:?}",
            td1.checks
        );
        // A wrong check digit is reported, the value kept.
        let bad = Mrz::parse(
            "I<UTOD231458908<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<",
        )
        .unwrap();
        let failed: Vec<&str> = bad
            .checks
            .iter()
            .filter(|c| c.ok == Some(false))
            .map(|c| c.field)
            .collect();
        assert_eq!(failed, ["document_number", "composite"]);
        assert_eq!(bad.document_number, "D23145890");
    }

    #[test]
    fn td1_long_document_numbers() {
        // Doc 9303-5 §4.2.4: 12-character number D23145890734, check digit 9.
        let td1 = Mrz::parse(
            "I<UTOD23145890<7349<<<<<<<<<<<\n3407127M9507122UTO<<<<<<<<<<<2\nSTEVENSON<<PETER<JOHN<<<<<<<<<",
        )
        .unwrap();
        assert_eq!(td1.document_number, "D23145890734");
        assert_eq!(td1.checks[0].ok, Some(true), "{:?}", td1.checks);
        assert_eq!(
            td1.key().unwrap().mrz_information(),
            "D23145890734934071279507122"
        );
    }

    #[test]
    fn china_exit_entry_permit_layout() {
        let f = build::Fields {
            code: "CS",
            state: "CHN",
            number: "C01234567",
            nationality: "CHN",
            birth: "900101",
            sex: "M",
            expiry: "300101",
            surname: "ZHANG",
            given: "SAN",
            optional: "",
        };
        let text = build::china_exit_entry(&f, "KBQLKBQLKBQL");
        let mrz = Mrz::parse(&text).unwrap();
        assert_eq!(mrz.format, MrzFormat::ChinaExitEntry);
        assert_eq!(mrz.document_number, "C01234567");
        assert_eq!(mrz.birth_date, "900101");
        assert_eq!(mrz.expiry_date, "300101");
        assert_eq!(mrz.surname, "ZHANG");
        assert_eq!(mrz.encoded_name.as_deref(), Some("KBQLKBQLKBQL"));
        assert!(
            mrz.checks.iter().all(|c| c.ok == Some(true)),
            "{:?}",
            mrz.checks
        );
        // The same text read as TD1 would swap the dates: the permits need their own parser.
        assert_ne!(Mrz::td1(&text.replace('\n', "")).birth_date, "900101");
    }

    #[test]
    fn builders_round_trip_and_bad_text_is_refused() {
        let f = build::Fields {
            code: "P",
            state: "UTO",
            number: "E12345678",
            nationality: "UTO",
            birth: "850315",
            sex: "F",
            expiry: "330101",
            surname: "TESTPERSON",
            given: "ANNA MARIA",
            optional: "",
        };
        for text in [build::td3(&f), build::td1(&f)] {
            let mrz = Mrz::parse(&text).unwrap();
            assert!(
                mrz.checks.iter().all(|c| c.ok == Some(true)),
                "{text}: {:?}",
                mrz.checks
            );
            assert_eq!(mrz.given_names, "ANNA MARIA");
            assert_eq!(
                mrz.key().unwrap(),
                MrzKey::new("E12345678", "850315", "330101").unwrap()
            );
        }
        assert!(Mrz::parse("P<UTO").is_err());
        assert!(Mrz::parse(&"a".repeat(88)).is_err());
        assert!(Mrz::parse(&"é".repeat(44)).is_err());
    }
}
