//! The 256-byte text block (reference §7): card-type detection, UCS-2 decoding, field layouts.
//!
//! Every field is fixed-width UCS-2LE padded with `20 00`. Parsing never fails on content: odd
//! characters become U+FFFD and are noted, unknown codes are kept raw. Only a block of the wrong
//! size is an error. The raw block itself is what gets signed; this parse is for display and checks.

mod idnum;
mod nation;

use std::fmt;

use thiserror::Error;

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
    fn from_text(text: String) -> Self {
        if text == LONG_TERM {
            Self::LongTerm
        } else {
            Self::Until(text)
        }
    }

    fn as_text(&self) -> &str {
        match self {
            Self::Until(date) => date,
            Self::LongTerm => LONG_TERM,
        }
    }
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
    pub birth: String,
    /// 住址.
    pub address: String,
    /// 公民身份号码.
    pub id_number: String,
    /// 签发机关.
    pub issuer: String,
    /// 有效期起始, YYYYMMDD.
    pub valid_from: String,
    /// 有效期截止.
    pub valid_to: Validity,
    /// Fields in which an unpaired surrogate was replaced by U+FFFD.
    pub lossy_fields: Vec<&'static str>,
}

impl fmt::Debug for ResidentText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResidentText")
            .field("name", &mask_name(&self.name))
            .field("sex", &self.sex)
            .field("nation", &self.nation)
            .field("birth", &"<redacted>")
            .field(
                "address",
                &format_args!("<{} chars>", self.address.chars().count()),
            )
            .field("id_number", &mask_id_number(&self.id_number))
            .field("issuer", &self.issuer)
            .field("valid_from", &self.valid_from)
            .field("valid_to", &self.valid_to)
            .field("lossy_fields", &self.lossy_fields)
            .finish()
    }
}

/// A parsed text block. `Debug` never prints personal values.
#[derive(Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per card read; boxing would only complicate matching for callers"
)]
pub enum ParsedText {
    /// Fully parsed resident card.
    Resident(ResidentText),
    /// Other layouts, decoded by offset into named fields (full parsing is later work).
    Other {
        /// Which layout.
        card_type: CardType,
        /// `(snake_case name, trimmed text)` in layout order.
        fields: Vec<(&'static str, String)>,
        /// Fields in which an unpaired surrogate was replaced by U+FFFD.
        lossy_fields: Vec<&'static str>,
    },
}

impl ParsedText {
    /// The layout this text was parsed with.
    pub fn card_type(&self) -> CardType {
        match self {
            Self::Resident(_) => CardType::Resident,
            Self::Other { card_type, .. } => *card_type,
        }
    }

    /// The card's ID/permit number, whatever the layout.
    pub fn number(&self) -> Option<&str> {
        match self {
            Self::Resident(t) => Some(&t.id_number),
            Self::Other { fields, .. } => fields
                .iter()
                .find(|(k, _)| matches!(*k, "number" | "id_number"))
                .map(|(_, v)| v.as_str()),
        }
    }
}

impl fmt::Debug for ParsedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resident(t) => f.debug_tuple("Resident").field(t).finish(),
            Self::Other {
                card_type,
                fields,
                lossy_fields,
            } => f
                .debug_struct("Other")
                .field("card_type", card_type)
                .field(
                    "fields",
                    &fields.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
                )
                .field("lossy_fields", lossy_fields)
                .finish(),
        }
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

/// A fixed-width field: name, byte offset, byte width.
type Field = (&'static str, usize, usize);

/// §7.1 resident layout.
const NAME: Field = ("name", 0, 30);
const SEX: Field = ("sex", 30, 2);
const NATION: Field = ("nation", 32, 4);
const BIRTH: Field = ("birth", 36, 16);
const ADDRESS: Field = ("address", 52, 70);
const ID_NUMBER: Field = ("id_number", 122, 36);
const ISSUER: Field = ("issuer", 158, 30);
const VALID_FROM: Field = ("valid_from", 188, 16);
const VALID_TO: Field = ("valid_to", 204, 16);

/// A field of the other layouts: name and the byte ranges whose concatenation forms it.
type Segments = (&'static str, &'static [(usize, usize)]);

/// §7.2, 2017 foreigner card.
const FOREIGN_2017: &[Segments] = &[
    ("english_name", &[(0, 120)]),
    ("sex", &[(120, 2)]),
    ("number", &[(122, 30)]),
    ("nationality", &[(152, 6)]),
    ("chinese_name", &[(158, 30)]),
    ("valid_from", &[(188, 16)]),
    ("valid_to", &[(204, 16)]),
    ("birth", &[(220, 16)]),
    ("card_version", &[(236, 4)]),
    ("authority_code", &[(240, 8)]),
    ("card_type", &[(248, 2)]),
];

/// §7.3, 2023 foreigner card. The English name continues at 220 (characters 36–46).
const FOREIGN_2023: &[Segments] = &[
    ("chinese_name", &[(0, 30)]),
    ("sex", &[(30, 2)]),
    ("renewal_count", &[(32, 4)]),
    ("birth", &[(36, 16)]),
    ("english_name", &[(52, 70), (220, 22)]),
    ("number", &[(122, 36)]),
    ("valid_from", &[(188, 16)]),
    ("valid_to", &[(204, 16)]),
    ("nationality", &[(242, 6)]),
    ("card_type", &[(248, 2)]),
    ("previous_number_link", &[(250, 6)]),
];

/// §7.4, HK/Macau/Taiwan residence permit.
const HK_MACAU_TAIWAN: &[Segments] = &[
    ("name", &[(0, 30)]),
    ("sex", &[(30, 2)]),
    ("birth", &[(36, 16)]),
    ("address", &[(52, 70)]),
    ("id_number", &[(122, 36)]),
    ("issuer", &[(158, 30)]),
    ("valid_from", &[(188, 16)]),
    ("valid_to", &[(204, 16)]),
    ("pass_number", &[(220, 18)]),
    ("issue_count", &[(238, 4)]),
    ("card_type", &[(248, 2)]),
];

/// Parses a text block according to its detected layout.
pub fn parse_text(block: &[u8]) -> Result<ParsedText, CardError> {
    if block.len() != TEXT_LEN {
        return Err(CardError::WrongLength { len: block.len() });
    }
    let card_type = CardType::detect(block);
    let layout = match card_type {
        CardType::Resident => return Ok(ParsedText::Resident(parse_resident(block))),
        CardType::ForeignPermanent2017 => FOREIGN_2017,
        CardType::ForeignPermanent2023 => FOREIGN_2023,
        CardType::HkMacauTaiwan => HK_MACAU_TAIWAN,
    };
    let mut lossy_fields = Vec::new();
    let fields = layout
        .iter()
        .map(|(name, segments)| {
            let bytes: Vec<u8> = segments
                .iter()
                .flat_map(|&(off, width)| block.get(off..off + width).unwrap_or_default())
                .copied()
                .collect();
            let (text, lossy) = decode_ucs2(&bytes);
            if lossy {
                lossy_fields.push(*name);
            }
            (*name, text)
        })
        .collect();
    Ok(ParsedText::Other {
        card_type,
        fields,
        lossy_fields,
    })
}

fn parse_resident(block: &[u8]) -> ResidentText {
    let mut lossy_fields = Vec::new();
    let mut field = |(name, off, width): Field| {
        let (text, lossy) = decode_ucs2(block.get(off..off + width).unwrap_or_default());
        if lossy {
            lossy_fields.push(name);
        }
        text
    };
    let name = field(NAME);
    let sex = Sex::from_code(&field(SEX));
    let nation = Nation::from_code(&field(NATION));
    let birth = field(BIRTH);
    let address = field(ADDRESS);
    let id_number = field(ID_NUMBER);
    let issuer = field(ISSUER);
    let valid_from = field(VALID_FROM);
    let valid_to = Validity::from_text(field(VALID_TO));
    ResidentText {
        name,
        sex,
        nation,
        birth,
        address,
        id_number,
        issuer,
        valid_from,
        valid_to,
        lossy_fields,
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
    let mut block = blank_text_block();
    let values: [(Field, &str); 9] = [
        (NAME, &text.name),
        (SEX, text.sex.code()),
        (NATION, &text.nation.code),
        (BIRTH, &text.birth),
        (ADDRESS, &text.address),
        (ID_NUMBER, &text.id_number),
        (ISSUER, &text.issuer),
        (VALID_FROM, &text.valid_from),
        (VALID_TO, text.valid_to.as_text()),
    ];
    for ((_, off, width), value) in values {
        write_ucs2_field(&mut block, off, width, value);
    }
    block
}

#[cfg(test)]
mod tests;
