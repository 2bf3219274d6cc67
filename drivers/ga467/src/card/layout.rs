//! Where each field sits in the 256-byte text block, per card type (reference §7.1–7.4).
//!
//! One table per layout drives both directions: parsing (block → named fields) and encoding
//! (named fields → block, for the simulator and tests). Field names are the record's names
//! (`name`, `name_en`, `birth_date`, `valid_until`, ...), so a scenario file, `inspect` output and
//! a record all say the same thing.

use super::{CardType, TEXT_LEN, decode_ucs2};

/// One field: its name and the byte ranges (offset, width) whose concatenation holds it. Only the
/// 2023 card's English name has two ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// Record-style snake_case name.
    pub name: &'static str,
    /// `(offset, width)` in bytes, in reading order.
    pub segments: &'static [(usize, usize)],
}

const fn f(name: &'static str, segments: &'static [(usize, usize)]) -> FieldSpec {
    FieldSpec { name, segments }
}

/// §7.1 resident ID card (居民身份证). Offsets 220–255 are reserved (spaces).
pub const RESIDENT: &[FieldSpec] = &[
    f("name", &[(0, 30)]),
    f("sex", &[(30, 2)]),
    f("nation", &[(32, 4)]),
    f("birth_date", &[(36, 16)]),
    f("address", &[(52, 70)]),
    f("id_number", &[(122, 36)]),
    f("issuer", &[(158, 30)]),
    f("valid_from", &[(188, 16)]),
    f("valid_until", &[(204, 16)]),
];

/// §7.2 foreigner permanent residence card, 2017 ('I'). Offsets 250–255 are reserved.
pub const FOREIGN_2017: &[FieldSpec] = &[
    f("name_en", &[(0, 120)]),
    f("sex", &[(120, 2)]),
    f("id_number", &[(122, 30)]),
    f("nationality", &[(152, 6)]),
    f("name", &[(158, 30)]),
    f("valid_from", &[(188, 16)]),
    f("valid_until", &[(204, 16)]),
    f("birth_date", &[(220, 16)]),
    f("card_version", &[(236, 4)]),
    f("issuer_code", &[(240, 8)]),
    f("type_mark", &[(248, 2)]),
];

/// §7.3 foreigner permanent residence card, 2023 ('Y'). The English name is characters 1–35 at 52
/// and characters 36–46 at 220; offsets 158–187 are reserved.
pub const FOREIGN_2023: &[FieldSpec] = &[
    f("name", &[(0, 30)]),
    f("sex", &[(30, 2)]),
    f("renewal_count", &[(32, 4)]),
    f("birth_date", &[(36, 16)]),
    f("name_en", &[(52, 70), (220, 22)]),
    f("id_number", &[(122, 36)]),
    f("valid_from", &[(188, 16)]),
    f("valid_until", &[(204, 16)]),
    f("nationality", &[(242, 6)]),
    f("type_mark", &[(248, 2)]),
    f("previous_number_link", &[(250, 6)]),
];

/// §7.4 HK/Macau/Taiwan residence permit ('J'). Offsets 32–35, 242–247 and 250–255 are reserved.
pub const HK_MACAU_TAIWAN: &[FieldSpec] = &[
    f("name", &[(0, 30)]),
    f("sex", &[(30, 2)]),
    f("birth_date", &[(36, 16)]),
    f("address", &[(52, 70)]),
    f("id_number", &[(122, 36)]),
    f("issuer", &[(158, 30)]),
    f("valid_from", &[(188, 16)]),
    f("valid_until", &[(204, 16)]),
    f("permit_number", &[(220, 18)]),
    f("issue_count", &[(238, 4)]),
    f("type_mark", &[(248, 2)]),
];

/// The table for a card type.
pub fn layout(card_type: CardType) -> &'static [FieldSpec] {
    match card_type {
        CardType::Resident => RESIDENT,
        CardType::ForeignPermanent2017 => FOREIGN_2017,
        CardType::ForeignPermanent2023 => FOREIGN_2023,
        CardType::HkMacauTaiwan => HK_MACAU_TAIWAN,
    }
}

/// The fields of `block` read with `layout`: `(name, trimmed text)` in layout order, and the names
/// of fields in which an unpaired surrogate was replaced. Ranges outside the block read as empty.
pub fn read_fields(
    block: &[u8],
    layout: &[FieldSpec],
) -> (Vec<(&'static str, String)>, Vec<&'static str>) {
    let mut lossy_fields = Vec::new();
    let fields = layout
        .iter()
        .map(|spec| {
            let bytes: Vec<u8> = spec
                .segments
                .iter()
                .flat_map(|&(off, width)| block.get(off..off + width).unwrap_or_default())
                .copied()
                .collect();
            let (text, lossy) = decode_ucs2(&bytes);
            if lossy {
                lossy_fields.push(spec.name);
            }
            (spec.name, text)
        })
        .collect();
    (fields, lossy_fields)
}

/// A field name that is not in the layout of the card type being encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{card_type} cards have no field `{field}` (fields: {known})")]
pub struct UnknownField {
    /// The card type's snake_case name.
    pub card_type: &'static str,
    /// The name that was given.
    pub field: String,
    /// The names that exist, comma separated.
    pub known: String,
}

/// Builds a text block from named values (the inverse of [`read_fields`]). Unnamed fields stay
/// spaces; text longer than its field is cut; a multi-segment field fills its segments in order.
/// Non-resident types get their type mark at 248 unless `type_mark` is given explicitly.
pub fn encode_fields(
    card_type: CardType,
    values: &[(&str, &str)],
) -> Result<[u8; TEXT_LEN], UnknownField> {
    let table = layout(card_type);
    let mut block = super::blank_text_block();
    if let Some(mark) = card_type.type_mark() {
        write_segments(&mut block, &[(248, 2)], &mark.to_string());
    }
    for (name, value) in values {
        let spec = table
            .iter()
            .find(|s| s.name == *name)
            .ok_or_else(|| UnknownField {
                card_type: card_type.as_str(),
                field: (*name).to_owned(),
                known: table.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
            })?;
        write_segments(&mut block, spec.segments, value);
    }
    Ok(block)
}

/// Writes `text` as UCS-2LE across `segments`, continuing in the next segment when one is full.
fn write_segments(block: &mut [u8; TEXT_LEN], segments: &[(usize, usize)], text: &str) {
    let mut units = text.encode_utf16();
    for &(off, width) in segments {
        let Some(field) = block.get_mut(off..off.saturating_add(width)) else {
            continue;
        };
        for slot in field.chunks_exact_mut(2) {
            match units.next() {
                Some(unit) => slot.copy_from_slice(&unit.to_le_bytes()),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table stays inside the block, has no overlapping ranges, and (except for the type
    /// mark) keeps clear of 248–249.
    #[test]
    fn tables_are_well_formed() {
        for t in CardType::ALL {
            let mut used = [false; TEXT_LEN];
            for spec in layout(t) {
                for &(off, width) in spec.segments {
                    assert!(off + width <= TEXT_LEN, "{t:?} {}", spec.name);
                    assert_eq!(width % 2, 0, "{t:?} {}", spec.name);
                    for (i, slot) in used.iter_mut().enumerate().skip(off).take(width) {
                        assert!(!*slot, "{t:?} {} overlaps at {i}", spec.name);
                        *slot = true;
                    }
                }
            }
            let marks = layout(t).iter().any(|s| s.name == "type_mark");
            assert_eq!(marks, t != CardType::Resident, "{t:?}");
        }
    }

    #[test]
    fn multi_segment_fields_continue() {
        let name: String = ('A'..='Z').chain('a'..='t').collect(); // 46 chars
        let block =
            encode_fields(CardType::ForeignPermanent2023, &[("name_en", &name)]).expect("encode");
        let (fields, lossy) = read_fields(&block, FOREIGN_2023);
        assert!(lossy.is_empty());
        let got = fields.iter().find(|(k, _)| *k == "name_en").map(|(_, v)| v);
        assert_eq!(got, Some(&name));
        // Characters beyond 46 are cut.
        let longer = format!("{name}XYZ");
        let block =
            encode_fields(CardType::ForeignPermanent2023, &[("name_en", &longer)]).expect("encode");
        let (fields, _) = read_fields(&block, FOREIGN_2023);
        assert_eq!(fields[4].1, name);
    }

    #[test]
    fn unknown_field_names_the_known_ones() {
        let e = encode_fields(CardType::Resident, &[("nationality", "CAN")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("resident cards have no field `nationality`")
        );
        assert!(e.to_string().contains("valid_until"), "{e}");
    }
}
