//! Synthetic cards for the simulator, tests and the demo. All data is made up ("测试" names, 测试路
//! addresses) but structurally valid: ID numbers carry a correct MOD 11-2 check character, the birth
//! date inside the number matches the birth field, and digit 17 matches the sex.

use crate::card::{
    Foreign2017Text, Foreign2023Text, HkMacauTaiwanText, Nation, PHOTO_LEN, ParsedText,
    ResidentText, Sex, TEXT_LEN, Validity, encode_resident_text, id_check_char, parse_text,
};

/// A card the simulator can place on its antenna.
#[derive(Clone, PartialEq, Eq)]
pub struct FakeCard {
    /// The 256-byte text block returned by `30 01`.
    pub text: [u8; TEXT_LEN],
    /// The photo bytes returned by `30 01` (1024 for a well-formed card; other sizes let tests
    /// exercise the reader's length checks).
    pub photo: Vec<u8>,
    /// Fingerprint templates returned by `30 10`: 0, 512 or 1024 bytes.
    pub fingerprint: Vec<u8>,
    /// 追加住址 returned by `30 03` (UCS-2, 70 bytes); `None` answers SW3 91.
    pub appended_address: Option<String>,
}

impl FakeCard {
    /// A card from a text block and photo, without fingerprints or appended address.
    pub fn new(text: [u8; TEXT_LEN], photo: Vec<u8>) -> Self {
        Self {
            text,
            photo,
            fingerprint: Vec::new(),
            appended_address: None,
        }
    }

    /// Adds `templates` (0–2) deterministic 512-byte fingerprint templates.
    pub fn with_fingerprints(mut self, templates: usize, seed: u32) -> Self {
        self.fingerprint = (0..templates.min(2))
            .flat_map(|i| {
                filler_photo(seed.wrapping_add(1000 + i as u32))
                    .into_iter()
                    .take(512)
            })
            .collect();
        self
    }

    /// Sets the appended address (`30 03`).
    pub fn with_appended_address(mut self, address: &str) -> Self {
        self.appended_address = Some(address.to_owned());
        self
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
        birth_date: birth.to_owned(),
        address: format!("北京市东城区测试路{n}号"),
        id_number: with_check(&format!("110101{birth}{seq}")),
        issuer: "北京市公安局东城分局".to_owned(),
        valid_from: from.to_owned(),
        valid_until: to,
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

/// One card of each non-resident type, structurally valid like the resident ones: a 2017 'I'
/// card, a 2023 'Y' card (English name longer than 35 characters, so it spans both parts) and a
/// 'J' permit.
pub fn fake_other_texts() -> Vec<ParsedText> {
    vec![
        ParsedText::Foreign2017(Foreign2017Text {
            name_en: "TESTPERSON, ALPHA".to_owned(),
            sex: Sex::Male,
            id_number: "CAN110090010001".to_owned(),
            nationality: "CAN".to_owned(),
            name: "测试丁".to_owned(),
            valid_from: "20170601".to_owned(),
            valid_until: Validity::Until("20370601".into()),
            birth_date: "19900101".to_owned(),
            card_version: "02".to_owned(),
            issuer_code: "1100".to_owned(),
            lossy_fields: Vec::new(),
        }),
        ParsedText::Foreign2023(Foreign2023Text {
            name: "测试戊".to_owned(),
            sex: Sex::Female,
            renewal_count: "00".to_owned(),
            birth_date: "19850203".to_owned(),
            name_en: "TESTPERSON, ALPHABETA GAMMADELTA EPSILON ZETA".to_owned(),
            id_number: with_check("91112419850203002"),
            valid_from: "20240101".to_owned(),
            valid_until: Validity::Until("20331231".into()),
            nationality: "CAN".to_owned(),
            previous_number_link: "BJ1".to_owned(),
            lossy_fields: Vec::new(),
        }),
        ParsedText::HkMacauTaiwan(HkMacauTaiwanText {
            name: "测试己".to_owned(),
            sex: Sex::Male,
            birth_date: "19800101".to_owned(),
            address: "北京市东城区测试路9号".to_owned(),
            id_number: with_check("81000019800101001"),
            issuer: "北京市公安局东城分局".to_owned(),
            valid_from: "20240101".to_owned(),
            valid_until: Validity::Until("20290101".into()),
            permit_number: "H12345678".to_owned(),
            issue_count: "01".to_owned(),
            lossy_fields: Vec::new(),
        }),
    ]
}

/// Every card type: the three resident cards, then 'I', 'Y' and 'J' (photo seeds 1–6).
pub fn fake_cards_all_types() -> Vec<FakeCard> {
    fake_resident_texts()
        .into_iter()
        .map(ParsedText::Resident)
        .chain(fake_other_texts())
        .zip(1u32..)
        .map(|(text, seed)| FakeCard::new(text.encode(), filler_photo(seed)))
        .collect()
}
