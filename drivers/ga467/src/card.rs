//! The 256-byte text block (reference §7): card-type detection, UCS-2 decoding, field layouts.
//!
//! Every field is fixed-width UCS-2LE padded with `20 00`. Parsing never fails on content: odd
//! characters become U+FFFD and are noted, unknown codes are kept raw. Only a block of the wrong
//! size is an error. The raw block itself is what gets signed; this parse is for display and checks.

pub mod checks;
pub mod date;
mod idnum;
pub mod layout;
mod nation;

use std::fmt;

use thiserror::Error;

pub use checks::{Check, CheckResult, run_checks};
pub use date::CivilDate;
pub use idnum::{id_check_char, id_number_valid, mask_id_number, mask_name};
pub use nation::{NATIONS, nation_name};

/// Size of the text block.
pub const TEXT_LEN: usize = 256;

/// Size of the WLT photo that follows the text in a read reply (§8; opaque, proprietary format).
pub const PHOTO_LEN: usize = 1024;

/// How a resident card spells its long-term validity (长期, bytes `7F 95 1F 67`).
pub const LONG_TERM: &str = "长期";

/// Which layout the text block uses, from the UCS-2 character at offsets 248–249 (§7.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardType {
    /// 居民身份证 (slot normally `20 00`; anything not I/Y/J).
    Resident,
    /// 外国人永久居留身份证, 2017 edition ('I').
    ForeignPermanent2017,
    /// 外国人永久居留身份证, 2023 edition ('Y').
    ForeignPermanent2023,
    /// 港澳台居民居住证 ('J').
    HkMacauTaiwan,
}

impl CardType {
    /// Every card type, resident first.
    pub const ALL: [CardType; 4] = [
        Self::Resident,
        Self::ForeignPermanent2017,
        Self::ForeignPermanent2023,
        Self::HkMacauTaiwan,
    ];

    /// Detects the layout of a text block (short blocks count as resident).
    pub fn detect(block: &[u8]) -> Self {
        match block.get(248..250) {
            Some([0x49, 0x00]) => Self::ForeignPermanent2017,
            Some([0x59, 0x00]) => Self::ForeignPermanent2023,
            Some([0x4A, 0x00]) => Self::HkMacauTaiwan,
            _ => Self::Resident,
        }
    }

    /// Stable snake_case name for records and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Resident => "resident",
            Self::ForeignPermanent2017 => "foreign_permanent_2017",
            Self::ForeignPermanent2023 => "foreign_permanent_2023",
            Self::HkMacauTaiwan => "hk_macau_taiwan",
        }
    }

    /// The inverse of [`CardType::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The character at offsets 248–249: `I`, `Y`, `J`; none for resident cards.
    pub fn type_mark(&self) -> Option<char> {
        match self {
            Self::Resident => None,
            Self::ForeignPermanent2017 => Some('I'),
            Self::ForeignPermanent2023 => Some('Y'),
            Self::HkMacauTaiwan => Some('J'),
        }
    }

    /// Chinese name of the document.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Resident => "居民身份证",
            Self::ForeignPermanent2017 => "外国人永久居留身份证(2017)",
            Self::ForeignPermanent2023 => "外国人永久居留身份证(2023)",
            Self::HkMacauTaiwan => "港澳台居民居住证",
        }
    }
}

/// Why a text block could not be parsed at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CardError {
    /// The block is not exactly [`TEXT_LEN`] bytes.
    #[error("text block is {len} bytes, expected {TEXT_LEN}")]
    WrongLength {
        /// Length received.
        len: usize,
    },
}

/// Sex code (GB/T 2261.1, §7.7). Codes outside the table stay unrecognised, never "female".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sex {
    /// "0" 未知.
    NotKnown,
    /// "1" 男.
    Male,
    /// "2" 女.
    Female,
    /// "9" 未说明.
    NotStated,
    /// Any other code, kept as read.
    Unrecognised(String),
}

impl Sex {
    /// Maps the one-character code.
    pub fn from_code(code: &str) -> Self {
        match code {
            "0" => Self::NotKnown,
            "1" => Self::Male,
            "2" => Self::Female,
            "9" => Self::NotStated,
            other => Self::Unrecognised(other.to_owned()),
        }
    }

    /// The raw code as on the card.
    pub fn code(&self) -> &str {
        match self {
            Self::NotKnown => "0",
            Self::Male => "1",
            Self::Female => "2",
            Self::NotStated => "9",
            Self::Unrecognised(raw) => raw,
        }
    }

    /// Chinese label (未知 for unrecognised codes).
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotKnown | Self::Unrecognised(_) => "未知",
            Self::Male => "男",
            Self::Female => "女",
            Self::NotStated => "未说明",
        }
    }
}

/// Nation (民族): the raw two-digit code and its GB 3304 name when the code is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nation {
    /// Code as on the card, e.g. "01".
    pub code: String,
    /// Name as printed, e.g. "汉"; `None` for codes outside the table.
    pub name: Option<&'static str>,
}

impl Nation {
    /// Looks the code up in [`NATIONS`].
    pub fn from_code(code: &str) -> Self {
        Self {
            code: code.to_owned(),
            name: nation_name(code),
        }
    }

    /// Full name: appends 族 except for 97 and 98.
    pub fn full_name(&self) -> Option<String> {
        let name = self.name?;
        Some(match self.code.as_str() {
            "97" | "98" => name.to_owned(),
            _ => format!("{name}族"),
        })
    }
}

/// End of validity: a date, or 长期 (long-term), which is not a date.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Validity {
    /// YYYYMMDD as on the card (not checked here).
    Until(String),
    /// 长期.
    LongTerm,
}

impl Validity {
    /// 长期 becomes [`Validity::LongTerm`], anything else is kept as a (possibly bad) date text.
    pub fn from_text(text: String) -> Self {
        if text == LONG_TERM {
            Self::LongTerm
        } else {
            Self::Until(text)
        }
    }

    /// The text as on the card.
    pub fn as_text(&self) -> &str {
        match self {
            Self::Until(date) => date,
            Self::LongTerm => LONG_TERM,
        }
    }
}

/// Redacting `Debug` for the text structs: card type, masked number and lossy fields only.
macro_rules! redacted_debug {
    ($ty:ident) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("name", &mask_name(&self.name))
                    .field("id_number", &mask_id_number(&self.id_number))
                    .field("lossy_fields", &self.lossy_fields)
                    .finish_non_exhaustive()
            }
        }
    };
}

/// The fields of a resident card (§7.1). `Debug` masks the personal fields.
#[derive(Clone, PartialEq, Eq)]
pub struct ResidentText {
    /// 姓名.
    pub name: String,
    /// 性别.
    pub sex: Sex,
    /// 民族.
    pub nation: Nation,
    /// 出生, YYYYMMDD as on the card.
    pub birth_date: String,
    /// 住址.
    pub address: String,
    /// 公民身份号码.
    pub id_number: String,
    /// 签发机关.
    pub issuer: String,
    /// 有效期起始, YYYYMMDD.
    pub valid_from: String,
    /// 有效期截止: a date or 长期.
    pub valid_until: Validity,
    /// Fields in which an unpaired surrogate was replaced by U+FFFD.
    pub lossy_fields: Vec<&'static str>,
}
redacted_debug!(ResidentText);

/// The fields of a 2017 foreigner permanent residence card ('I', §7.2).
#[derive(Clone, PartialEq, Eq)]
pub struct Foreign2017Text {
    /// 英文姓名, upper case, surname first (up to 60 characters).
    pub name_en: String,
    /// 性别.
    pub sex: Sex,
    /// 永久居留证号码: 3 letters + 12 digits.
    pub id_number: String,
    /// 国籍或所在地区代码, GB/T 2659 alpha-3.
    pub nationality: String,
    /// 中文姓名.
    pub name: String,
    /// 证件签发日期, YYYYMMDD.
    pub valid_from: String,
    /// 证件终止日期.
    pub valid_until: Validity,
    /// 出生日期, YYYYMMDD.
    pub birth_date: String,
    /// 证件版本号, 2 digits.
    pub card_version: String,
    /// 当次申请受理机关代码, 4 digits.
    pub issuer_code: String,
    /// Fields in which an unpaired surrogate was replaced by U+FFFD.
    pub lossy_fields: Vec<&'static str>,
}
redacted_debug!(Foreign2017Text);

/// The fields of a 2023 foreigner permanent residence card ('Y', §7.3).
#[derive(Clone, PartialEq, Eq)]
pub struct Foreign2023Text {
    /// 中文姓名.
    pub name: String,
    /// 性别.
    pub sex: Sex,
    /// 换证次数, 2 digits.
    pub renewal_count: String,
    /// 出生日期, YYYYMMDD.
    pub birth_date: String,
    /// 英文姓名: characters 1–35 (offset 52) followed by characters 36–46 (offset 220).
    pub name_en: String,
    /// 证件号码: 18 characters, leading 9, MOD 11-2.
    pub id_number: String,
    /// 有效期起始, YYYYMMDD.
    pub valid_from: String,
    /// 有效期截止.
    pub valid_until: Validity,
    /// 国家或地区代码, alpha-3.
    pub nationality: String,
    /// 既往版本证件号码关联项 (city code + sequence), links to the 2017 card's number.
    pub previous_number_link: String,
    /// Fields in which an unpaired surrogate was replaced by U+FFFD.
    pub lossy_fields: Vec<&'static str>,
}
redacted_debug!(Foreign2023Text);

/// The fields of a HK/Macau/Taiwan residence permit ('J', §7.4).
#[derive(Clone, PartialEq, Eq)]
pub struct HkMacauTaiwanText {
    /// 姓名.
    pub name: String,
    /// 性别.
    pub sex: Sex,
    /// 出生日期, YYYYMMDD.
    pub birth_date: String,
    /// 住址.
    pub address: String,
    /// 公民身份号码 (address code 810000 HK, 820000 Macau, 830000 Taiwan).
    pub id_number: String,
    /// 签发机关.
    pub issuer: String,
    /// 有效期起始, YYYYMMDD.
    pub valid_from: String,
    /// 有效期截止.
    pub valid_until: Validity,
    /// 通行证号码 (e.g. H/M + 8 digits).
    pub permit_number: String,
    /// 签发次数, 2 characters.
    pub issue_count: String,
    /// Fields in which an unpaired surrogate was replaced by U+FFFD.
    pub lossy_fields: Vec<&'static str>,
}
redacted_debug!(HkMacauTaiwanText);

/// A parsed text block, one variant per layout. `Debug` never prints personal values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per card read; boxing would only complicate matching for callers"
)]
pub enum ParsedText {
    /// 居民身份证.
    Resident(ResidentText),
    /// 外国人永久居留身份证, 2017 ('I').
    Foreign2017(Foreign2017Text),
    /// 外国人永久居留身份证, 2023 ('Y').
    Foreign2023(Foreign2023Text),
    /// 港澳台居民居住证 ('J').
    HkMacauTaiwan(HkMacauTaiwanText),
}

impl ParsedText {
    /// The layout this text was parsed with.
    pub fn card_type(&self) -> CardType {
        match self {
            Self::Resident(_) => CardType::Resident,
            Self::Foreign2017(_) => CardType::ForeignPermanent2017,
            Self::Foreign2023(_) => CardType::ForeignPermanent2023,
            Self::HkMacauTaiwan(_) => CardType::HkMacauTaiwan,
        }
    }

    /// The card's ID / residence card number, whatever the layout.
    pub fn number(&self) -> Option<&str> {
        Some(match self {
            Self::Resident(t) => &t.id_number,
            Self::Foreign2017(t) => &t.id_number,
            Self::Foreign2023(t) => &t.id_number,
            Self::HkMacauTaiwan(t) => &t.id_number,
        })
    }

    /// The Chinese name (may be empty on foreigners' cards).
    pub fn name(&self) -> &str {
        match self {
            Self::Resident(t) => &t.name,
            Self::Foreign2017(t) => &t.name,
            Self::Foreign2023(t) => &t.name,
            Self::HkMacauTaiwan(t) => &t.name,
        }
    }

    /// The sex code.
    pub fn sex(&self) -> &Sex {
        match self {
            Self::Resident(t) => &t.sex,
            Self::Foreign2017(t) => &t.sex,
            Self::Foreign2023(t) => &t.sex,
            Self::HkMacauTaiwan(t) => &t.sex,
        }
    }

    /// The birth date as on the card.
    pub fn birth_date(&self) -> &str {
        match self {
            Self::Resident(t) => &t.birth_date,
            Self::Foreign2017(t) => &t.birth_date,
            Self::Foreign2023(t) => &t.birth_date,
            Self::HkMacauTaiwan(t) => &t.birth_date,
        }
    }

    /// Start of validity as on the card.
    pub fn valid_from(&self) -> &str {
        match self {
            Self::Resident(t) => &t.valid_from,
            Self::Foreign2017(t) => &t.valid_from,
            Self::Foreign2023(t) => &t.valid_from,
            Self::HkMacauTaiwan(t) => &t.valid_from,
        }
    }

    /// End of validity.
    pub fn valid_until(&self) -> &Validity {
        match self {
            Self::Resident(t) => &t.valid_until,
            Self::Foreign2017(t) => &t.valid_until,
            Self::Foreign2023(t) => &t.valid_until,
            Self::HkMacauTaiwan(t) => &t.valid_until,
        }
    }

    /// Fields in which an unpaired surrogate was replaced by U+FFFD.
    pub fn lossy_fields(&self) -> &[&'static str] {
        match self {
            Self::Resident(t) => &t.lossy_fields,
            Self::Foreign2017(t) => &t.lossy_fields,
            Self::Foreign2023(t) => &t.lossy_fields,
            Self::HkMacauTaiwan(t) => &t.lossy_fields,
        }
    }

    /// Every field as text, `(layout name, value as on the card)` in layout order (codes raw,
    /// 长期 as 长期). The type mark is included for non-resident cards.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let s = |v: &str| v.to_owned();
        match self {
            Self::Resident(t) => vec![
                ("name", s(&t.name)),
                ("sex", s(t.sex.code())),
                ("nation", s(&t.nation.code)),
                ("birth_date", s(&t.birth_date)),
                ("address", s(&t.address)),
                ("id_number", s(&t.id_number)),
                ("issuer", s(&t.issuer)),
                ("valid_from", s(&t.valid_from)),
                ("valid_until", s(t.valid_until.as_text())),
            ],
            Self::Foreign2017(t) => vec![
                ("name_en", s(&t.name_en)),
                ("sex", s(t.sex.code())),
                ("id_number", s(&t.id_number)),
                ("nationality", s(&t.nationality)),
                ("name", s(&t.name)),
                ("valid_from", s(&t.valid_from)),
                ("valid_until", s(t.valid_until.as_text())),
                ("birth_date", s(&t.birth_date)),
                ("card_version", s(&t.card_version)),
                ("issuer_code", s(&t.issuer_code)),
                ("type_mark", s("I")),
            ],
            Self::Foreign2023(t) => vec![
                ("name", s(&t.name)),
                ("sex", s(t.sex.code())),
                ("renewal_count", s(&t.renewal_count)),
                ("birth_date", s(&t.birth_date)),
                ("name_en", s(&t.name_en)),
                ("id_number", s(&t.id_number)),
                ("valid_from", s(&t.valid_from)),
                ("valid_until", s(t.valid_until.as_text())),
                ("nationality", s(&t.nationality)),
                ("type_mark", s("Y")),
                ("previous_number_link", s(&t.previous_number_link)),
            ],
            Self::HkMacauTaiwan(t) => vec![
                ("name", s(&t.name)),
                ("sex", s(t.sex.code())),
                ("birth_date", s(&t.birth_date)),
                ("address", s(&t.address)),
                ("id_number", s(&t.id_number)),
                ("issuer", s(&t.issuer)),
                ("valid_from", s(&t.valid_from)),
                ("valid_until", s(t.valid_until.as_text())),
                ("permit_number", s(&t.permit_number)),
                ("issue_count", s(&t.issue_count)),
                ("type_mark", s("J")),
            ],
        }
    }

    /// The text block for these fields (the inverse of [`parse_text`], for the simulator and
    /// tests). `lossy_fields` is ignored.
    pub fn encode(&self) -> [u8; TEXT_LEN] {
        let fields = self.fields();
        let values: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Every name comes from this type's own layout, so encoding cannot meet an unknown field.
        layout::encode_fields(self.card_type(), &values).unwrap_or_else(|_| blank_text_block())
    }
}

/// Decodes UCS-2LE, replacing unpaired surrogates with U+FFFD, and trims trailing spaces and NULs.
/// Returns the text and whether anything was replaced. A trailing odd byte is ignored.
pub fn decode_ucs2(bytes: &[u8]) -> (String, bool) {
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
    let mut lossy = false;
    let text: String = char::decode_utf16(units)
        .map(|r| {
            r.unwrap_or_else(|_| {
                lossy = true;
                char::REPLACEMENT_CHARACTER
            })
        })
        .collect();
    let trimmed = text.trim_end_matches([' ', '\0']).len();
    let mut text = text;
    text.truncate(trimmed);
    (text, lossy)
}

/// Parses a text block according to its detected layout. Only a block of the wrong size is an
/// error; every field of every layout is decoded, trimmed and named.
pub fn parse_text(block: &[u8]) -> Result<ParsedText, CardError> {
    if block.len() != TEXT_LEN {
        return Err(CardError::WrongLength { len: block.len() });
    }
    let card_type = CardType::detect(block);
    let (fields, lossy_fields) = layout::read_fields(block, layout::layout(card_type));
    let mut fields = Fields(fields);
    Ok(match card_type {
        CardType::Resident => ParsedText::Resident(ResidentText {
            name: fields.take("name"),
            sex: Sex::from_code(&fields.take("sex")),
            nation: Nation::from_code(&fields.take("nation")),
            birth_date: fields.take("birth_date"),
            address: fields.take("address"),
            id_number: fields.take("id_number"),
            issuer: fields.take("issuer"),
            valid_from: fields.take("valid_from"),
            valid_until: Validity::from_text(fields.take("valid_until")),
            lossy_fields,
        }),
        CardType::ForeignPermanent2017 => ParsedText::Foreign2017(Foreign2017Text {
            name_en: fields.take("name_en"),
            sex: Sex::from_code(&fields.take("sex")),
            id_number: fields.take("id_number"),
            nationality: fields.take("nationality"),
            name: fields.take("name"),
            valid_from: fields.take("valid_from"),
            valid_until: Validity::from_text(fields.take("valid_until")),
            birth_date: fields.take("birth_date"),
            card_version: fields.take("card_version"),
            issuer_code: fields.take("issuer_code"),
            lossy_fields,
        }),
        CardType::ForeignPermanent2023 => ParsedText::Foreign2023(Foreign2023Text {
            name: fields.take("name"),
            sex: Sex::from_code(&fields.take("sex")),
            renewal_count: fields.take("renewal_count"),
            birth_date: fields.take("birth_date"),
            name_en: fields.take("name_en"),
            id_number: fields.take("id_number"),
            valid_from: fields.take("valid_from"),
            valid_until: Validity::from_text(fields.take("valid_until")),
            nationality: fields.take("nationality"),
            previous_number_link: fields.take("previous_number_link"),
            lossy_fields,
        }),
        CardType::HkMacauTaiwan => ParsedText::HkMacauTaiwan(HkMacauTaiwanText {
            name: fields.take("name"),
            sex: Sex::from_code(&fields.take("sex")),
            birth_date: fields.take("birth_date"),
            address: fields.take("address"),
            id_number: fields.take("id_number"),
            issuer: fields.take("issuer"),
            valid_from: fields.take("valid_from"),
            valid_until: Validity::from_text(fields.take("valid_until")),
            permit_number: fields.take("permit_number"),
            issue_count: fields.take("issue_count"),
            lossy_fields,
        }),
    })
}

/// Decoded fields, taken out by name.
struct Fields(Vec<(&'static str, String)>);

impl Fields {
    /// The named field's text; empty if the layout has no such field (a bug caught by tests).
    fn take(&mut self, name: &str) -> String {
        self.0
            .iter_mut()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| std::mem::take(v))
            .unwrap_or_default()
    }
}

/// A text block of nothing but UCS-2 spaces (`20 00`): a resident card with empty fields.
pub fn blank_text_block() -> [u8; TEXT_LEN] {
    let mut block = [0u8; TEXT_LEN];
    for pair in block.chunks_exact_mut(2) {
        pair.copy_from_slice(&[0x20, 0x00]);
    }
    block
}

/// Writes `text` as UCS-2LE at `offset`, cut to `width` bytes (text beyond the field is dropped;
/// the rest of the field is left as it was, normally spaces). For building synthetic blocks.
pub fn write_ucs2_field(block: &mut [u8; TEXT_LEN], offset: usize, width: usize, text: &str) {
    let Some(field) = block.get_mut(offset..offset.saturating_add(width)) else {
        return;
    };
    for (slot, unit) in field.chunks_exact_mut(2).zip(text.encode_utf16()) {
        slot.copy_from_slice(&unit.to_le_bytes());
    }
}

/// Builds the resident text block for `text` (simulator and tests): the inverse of [`parse_text`].
/// 长期 is written as its two UCS-2 characters followed by spaces; `lossy_fields` is ignored.
pub fn encode_resident_text(text: &ResidentText) -> [u8; TEXT_LEN] {
    ParsedText::Resident(text.clone()).encode()
}

#[cfg(test)]
mod tests;
