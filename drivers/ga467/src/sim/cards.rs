//! Synthetic cards for the simulator, tests and the demo. All data is made up ("测试" names, 测试路
//! addresses) but structurally valid: ID numbers carry a correct MOD 11-2 check character, the birth
//! date inside the number matches the birth field, and digit 17 matches the sex.

use crate::card::{
    Nation, PHOTO_LEN, ResidentText, Sex, TEXT_LEN, Validity, encode_resident_text, id_check_char,
    parse_text,
};

/// A card the simulator can place on its antenna.
#[derive(Clone, PartialEq, Eq)]
pub struct FakeCard {
    /// The 256-byte text block returned by `30 01`.
    pub text: [u8; TEXT_LEN],
    /// The photo bytes returned by `30 01` (1024 for a well-formed card; other sizes let tests
    /// exercise the reader's length checks).
    pub photo: Vec<u8>,
}

impl FakeCard {
    /// A card from a text block and photo.
    pub fn new(text: [u8; TEXT_LEN], photo: Vec<u8>) -> Self {
        Self { text, photo }
    }

    /// The ID number in the text block (for masked logging), if it parses.
    pub fn number(&self) -> Option<String> {
        parse_text(&self.text).ok()?.number().map(str::to_owned)
    }
}

impl std::fmt::Debug for FakeCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let number = self.number().unwrap_or_default();
        f.debug_struct("FakeCard")
            .field("number", &crate::card::mask_id_number(&number))
            .field("photo", &format_args!("<{} bytes>", self.photo.len()))
            .finish()
    }
}

/// 1024 deterministic filler bytes standing in for a WLT photo (the real format is proprietary and
/// only carried as opaque bytes). A 32-bit LCG (Numerical Recipes constants) seeded per card.
pub fn filler_photo(seed: u32) -> Vec<u8> {
    let mut state = seed;
    (0..PHOTO_LEN)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect()
}

/// `first17` plus its check character.
fn with_check(first17: &str) -> String {
    let check = id_check_char(first17).unwrap_or('?');
    format!("{first17}{check}")
}

/// The resident texts behind [`fake_resident_cards`], in order.
pub fn fake_resident_texts() -> Vec<ResidentText> {
    let card = |name: &str,
                sex: Sex,
                nation: &str,
                birth: &str,
                n: u32,
                seq: &str,
                from: &str,
                to: Validity| ResidentText {
        name: name.to_owned(),
        sex,
        nation: Nation::from_code(nation),
        birth: birth.to_owned(),
        address: format!("北京市东城区测试路{n}号"),
        id_number: with_check(&format!("110101{birth}{seq}")),
        issuer: "北京市公安局东城分局".to_owned(),
        valid_from: from.to_owned(),
        valid_to: to,
        lossy_fields: Vec::new(),
    };
    vec![
        // Issued at 30: valid 20 years.
        card(
            "测试甲",
            Sex::Male,
            "01",
            "19900307",
            1,
            "001",
            "20200610",
            Validity::Until("20400610".into()),
        ),
        // Issued at 16: valid 10 years.
        card(
            "测试乙",
            Sex::Female,
            "03",
            "20080815",
            2,
            "002",
            "20240901",
            Validity::Until("20340901".into()),
        ),
        // Issued at 50: 长期.
        card(
            "测试丙",
            Sex::Male,
            "22",
            "19600101",
            3,
            "003",
            "20100520",
            Validity::LongTerm,
        ),
    ]
}

/// At least three clearly synthetic resident cards (测试甲, 测试乙, 测试丙; nations 01, 03, 22; one
/// with 长期 validity), each with its own filler photo.
pub fn fake_resident_cards() -> Vec<FakeCard> {
    fake_resident_texts()
        .iter()
        .zip(1u32..)
        .map(|(text, seed)| FakeCard::new(encode_resident_text(text), filler_photo(seed)))
        .collect()
}
