//! Plausibility checks on a parsed card (reference §7.5, §7.7, §9). A failed check is reported,
//! never "fixed" and never a reason to drop the card: the record carries the card as read plus
//! these results.
//!
//! | name | applies to | passes when |
//! |---|---|---|
//! | `text_decoding` | all | every field decoded without unpaired surrogates |
//! | `card_type_consistent` | all | the number fits the type mark (resident: 18 characters, not 9 / 81–83; 'Y': starts with 9; 'J': starts with 81, 82 or 83; 'I': 3 letters + 12 digits) |
//! | `id_number_checksum` | resident, 'Y', 'J' | MOD 11-2 check character matches |
//! | `sex_code_known` | all | sex code is 0, 1, 2 or 9 |
//! | `nation_code_known` | resident | nation code is in GB 3304 |
//! | `birth_date_valid` | all | birth date is a real date, not after today |
//! | `birth_date_matches_id` | resident, 'Y', 'J' | number digits 7–14 equal the birth date |
//! | `sex_matches_id` | resident, 'Y', 'J' | number digit 17 is odd for male, even for female |
//! | `validity_period` | all | dates are real and ordered (birth ≤ start ≤ today, start < end); resident cards also follow the age rule (5/10/20 years or 长期) |
//! | `not_expired` | all | the end date is today or later, or 长期 |
//!
//! Results are `pass`, `fail`, or `unknown` when the inputs needed are themselves malformed (for
//! example `sex_matches_id` with sex code 9). The 'Y' number layout is [INFERRED] in the
//! reference; its failures say so.

use super::{CardType, CivilDate, ParsedText, Sex, Validity, id_check_char, id_number_valid};

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckResult {
    /// The card satisfies the rule.
    Pass,
    /// The card breaks the rule; `detail` says how.
    Fail,
    /// The rule could not be decided (its inputs are malformed or absent).
    Unknown,
}

impl CheckResult {
    /// `pass`, `fail`, `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Unknown => "unknown",
        }
    }
}

/// One check on one card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Stable snake_case name (see the module table).
    pub name: &'static str,
    /// Its outcome.
    pub result: CheckResult,
    /// Why, when it did not pass. Mentions only values the record already holds.
    pub detail: Option<String>,
}

impl Check {
    fn pass(name: &'static str) -> Self {
        Self {
            name,
            result: CheckResult::Pass,
            detail: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            result: CheckResult::Fail,
            detail: Some(detail.into()),
        }
    }

    fn unknown(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            result: CheckResult::Unknown,
            detail: Some(detail.into()),
        }
    }

    fn from_rule(name: &'static str, outcome: Result<(), Verdict>) -> Self {
        match outcome {
            Ok(()) => Self::pass(name),
            Err(Verdict::Fail(d)) => Self::fail(name, d),
            Err(Verdict::Unknown(d)) => Self::unknown(name, d),
        }
    }
}

/// Why a rule did not pass.
enum Verdict {
    Fail(String),
    Unknown(String),
}

use Verdict::{Fail, Unknown};

/// Runs every check that applies to this card type, in the order of the module table. `today` is
/// the date expiry is judged against (normally [`CivilDate::today_in_china`]).
pub fn run_checks(card: &ParsedText, today: CivilDate) -> Vec<Check> {
    let card_type = card.card_type();
    let number = card.number().unwrap_or_default();
    let numbered = card_type != CardType::ForeignPermanent2017;
    let inferred = if card_type == CardType::ForeignPermanent2023 {
        " (the 'Y' number layout is inferred)"
    } else {
        ""
    };
    let mut checks = vec![
        text_decoding(card.lossy_fields()),
        Check::from_rule("card_type_consistent", type_consistent(card_type, number)),
    ];
    if numbered {
        checks.push(Check::from_rule("id_number_checksum", checksum(number)));
    }
    checks.push(match card.sex() {
        Sex::Unrecognised(code) => Check::fail(
            "sex_code_known",
            format!("sex code {code:?} is not in GB/T 2261.1 (0, 1, 2, 9)"),
        ),
        _ => Check::pass("sex_code_known"),
    });
    if let ParsedText::Resident(t) = card {
        checks.push(match t.nation.name {
            Some(_) => Check::pass("nation_code_known"),
            None => Check::fail(
                "nation_code_known",
                format!("nation code {:?} is not in GB 3304", t.nation.code),
            ),
        });
    }
    let birth = CivilDate::parse_yyyymmdd(card.birth_date());
    checks.push(Check::from_rule(
        "birth_date_valid",
        birth_valid(card.birth_date(), birth, today),
    ));
    if numbered {
        checks.push(Check::from_rule(
            "birth_date_matches_id",
            birth_matches(number, card.birth_date()).map_err(|v| with_note(v, inferred)),
        ));
        checks.push(Check::from_rule(
            "sex_matches_id",
            sex_matches(number, card.sex()).map_err(|v| with_note(v, inferred)),
        ));
    }
    checks.push(Check::from_rule(
        "validity_period",
        validity_period(card, birth, today),
    ));
    checks.push(Check::from_rule(
        "not_expired",
        not_expired(card.valid_until(), today),
    ));
    checks
}

fn with_note(v: Verdict, note: &str) -> Verdict {
    match v {
        Fail(d) => Fail(format!("{d}{note}")),
        Unknown(d) => Unknown(d),
    }
}

fn text_decoding(lossy: &[&str]) -> Check {
    if lossy.is_empty() {
        Check::pass("text_decoding")
    } else {
        Check::fail(
            "text_decoding",
            format!(
                "invalid UTF-16 (unpaired surrogate) replaced by U+FFFD in: {}",
                lossy.join(", ")
            ),
        )
    }
}

fn type_consistent(card_type: CardType, number: &str) -> Result<(), Verdict> {
    let ok = match card_type {
        CardType::Resident => {
            number.chars().count() == 18
                && !number.starts_with('9')
                && !["81", "82", "83"].iter().any(|p| number.starts_with(p))
        }
        CardType::ForeignPermanent2023 => number.starts_with('9'),
        CardType::HkMacauTaiwan => ["81", "82", "83"].iter().any(|p| number.starts_with(p)),
        CardType::ForeignPermanent2017 => {
            let b = number.as_bytes();
            b.len() == 15
                && b.iter().take(3).all(u8::is_ascii_uppercase)
                && b.iter().skip(3).all(u8::is_ascii_digit)
        }
    };
    if ok {
        return Ok(());
    }
    let expected = match card_type {
        CardType::Resident => {
            "a resident number has 18 characters and does not start with 9, 81, 82 or 83"
        }
        CardType::ForeignPermanent2023 => "a 2023 permanent residence number starts with 9",
        CardType::HkMacauTaiwan => "a HK/Macau/Taiwan permit number starts with 81, 82 or 83",
        CardType::ForeignPermanent2017 => {
            "a 2017 permanent residence number is 3 capital letters and 12 digits"
        }
    };
    Err(Fail(format!(
        "type mark says {} but the number does not fit: {expected}",
        card_type.as_str()
    )))
}

fn checksum(number: &str) -> Result<(), Verdict> {
    if id_number_valid(number) {
        return Ok(());
    }
    let first17 = number.get(..17).unwrap_or_default();
    match (id_check_char(first17), number.len() == 18) {
        (Some(expected), true) => Err(Fail(format!(
            "MOD 11-2 check character should be {expected}, the card has {}",
            number.get(17..).unwrap_or_default()
        ))),
        _ => Err(Fail(
            "not 17 digits followed by a check character (MOD 11-2 cannot be computed)".into(),
        )),
    }
}

fn birth_valid(text: &str, birth: Option<CivilDate>, today: CivilDate) -> Result<(), Verdict> {
    match birth {
        None => Err(Fail(format!(
            "birth date {text:?} is not a calendar date (YYYYMMDD)"
        ))),
        Some(b) if b > today => Err(Fail(format!("birth date {b} is in the future"))),
        Some(_) => Ok(()),
    }
}

/// Digits 7–14 of an 18-character number.
fn number_birth(number: &str) -> Option<&str> {
    (number.len() == 18).then(|| number.get(6..14)).flatten()
}

fn birth_matches(number: &str, birth: &str) -> Result<(), Verdict> {
    let Some(in_number) = number_birth(number) else {
        return Err(Unknown(
            "the number has no birth date at digits 7–14 (not 18 characters)".into(),
        ));
    };
    if in_number == birth {
        Ok(())
    } else {
        Err(Fail(format!(
            "number digits 7–14 are {in_number}, the birth date field is {birth}"
        )))
    }
}

fn sex_matches(number: &str, sex: &Sex) -> Result<(), Verdict> {
    let digit = number
        .as_bytes()
        .get(16)
        .filter(|d| d.is_ascii_digit() && number.len() == 18);
    let Some(digit) = digit else {
        return Err(Unknown("the number has no digit 17".into()));
    };
    let odd = (digit - b'0') % 2 == 1;
    match (sex, odd) {
        (Sex::Male, true) | (Sex::Female, false) => Ok(()),
        (Sex::Male | Sex::Female, _) => Err(Fail(format!(
            "number digit 17 is {} ({}), the sex field says {}",
            char::from(*digit),
            if odd { "male" } else { "female" },
            sex.label()
        ))),
        _ => Err(Unknown(format!(
            "sex code {:?} cannot be compared with digit 17",
            sex.code()
        ))),
    }
}

fn validity_period(
    card: &ParsedText,
    birth: Option<CivilDate>,
    today: CivilDate,
) -> Result<(), Verdict> {
    let from_text = card.valid_from();
    let from = CivilDate::parse_yyyymmdd(from_text).ok_or_else(|| {
        Fail(format!(
            "start of validity {from_text:?} is not a calendar date"
        ))
    })?;
    let until = match card.valid_until() {
        Validity::LongTerm if card.card_type() != CardType::Resident => {
            return Err(Fail(format!(
                "长期 (long-term) validity on a {} card; only resident cards have it",
                card.card_type().as_str()
            )));
        }
        Validity::LongTerm => None,
        Validity::Until(text) => Some(
            CivilDate::parse_yyyymmdd(text)
                .ok_or_else(|| Fail(format!("end of validity {text:?} is not a calendar date")))?,
        ),
    };
    if let Some(b) = birth
        && from < b
    {
        return Err(Fail(format!(
            "validity starts {from}, before the birth date {b}"
        )));
    }
    if from > today {
        return Err(Fail(format!("validity starts {from}, after today {today}")));
    }
    if let Some(u) = until
        && u <= from
    {
        return Err(Fail(format!(
            "validity ends {u}, not after its start {from}"
        )));
    }
    if card.card_type() != CardType::Resident {
        // 'I', 'Y' and 'J' terms are unverified (reference §9): only form and order are checked.
        return Ok(());
    }
    let Some(b) = birth else {
        return Err(Unknown(
            "the age rule needs a valid birth date; dates are ordered".into(),
        ));
    };
    let age = b.full_years_until(&from);
    let years = match age {
        0..=15 => Some(5),
        16..=25 => Some(10),
        26..=45 => Some(20),
        _ => None,
    };
    let term = |y: Option<u16>| y.map_or("长期".to_owned(), |y| format!("{y} years"));
    match (years, until) {
        (None, None) => Ok(()),
        (Some(y), Some(u)) => {
            let expected = from.add_years(y);
            // 29 February: the end may be written 28 February or 1 March.
            let alternative = expected.and_then(|e| {
                (from.month() == 2 && from.day() == 29 && e.day() == 28)
                    .then(|| CivilDate::new(e.year(), 3, 1))
                    .flatten()
            });
            if Some(u) == expected || Some(u) == alternative {
                Ok(())
            } else {
                Err(Fail(format!(
                    "issued at age {age}: a resident card is valid {} (until {}), the card says {u}",
                    term(Some(y)),
                    expected.map_or("?".into(), |e| e.to_string())
                )))
            }
        }
        (expected, until) => Err(Fail(format!(
            "issued at age {age}: a resident card is valid {}, the card says {}",
            term(expected),
            until.map_or("长期".into(), |u| format!("until {u}"))
        ))),
    }
}

fn not_expired(until: &Validity, today: CivilDate) -> Result<(), Verdict> {
    match until {
        Validity::LongTerm => Ok(()),
        Validity::Until(text) => match CivilDate::parse_yyyymmdd(text) {
            None => Err(Unknown(format!(
                "end of validity {text:?} is not a calendar date"
            ))),
            Some(u) if u < today => Err(Fail(format!("expired on {u} (today is {today})"))),
            Some(_) => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests;
