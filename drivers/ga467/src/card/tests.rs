use super::*;
use crate::sim::{fake_resident_cards, fake_resident_texts};

fn field(parsed: &ParsedText, name: &str) -> Option<String> {
    parsed
        .fields()
        .into_iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[test]
fn fake_cards_round_trip_field_by_field() {
    let texts = fake_resident_texts();
    let cards = fake_resident_cards();
    assert!(cards.len() >= 3);
    for (expected, card) in texts.iter().zip(&cards) {
        let parsed = parse_text(&card.text).expect("256 bytes");
        let ParsedText::Resident(got) = parsed else {
            panic!("not resident: {parsed:?}");
        };
        assert_eq!(got.name, expected.name);
        assert_eq!(got.sex, expected.sex);
        assert_eq!(got.nation, expected.nation);
        assert_eq!(got.birth_date, expected.birth_date);
        assert_eq!(got.address, expected.address);
        assert_eq!(got.id_number, expected.id_number);
        assert_eq!(got.issuer, expected.issuer);
        assert_eq!(got.valid_from, expected.valid_from);
        assert_eq!(got.valid_until, expected.valid_until);
        assert!(got.lossy_fields.is_empty());
        assert_eq!(&got, expected);
        assert_eq!(card.photo.len(), 1024);
    }
}

#[test]
fn fake_cards_are_structurally_valid() {
    let texts = fake_resident_texts();
    let names: Vec<&str> = texts.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["测试甲", "测试乙", "测试丙"]);
    let nations: Vec<&str> = texts.iter().map(|t| t.nation.code.as_str()).collect();
    assert_eq!(nations, ["01", "03", "22"]);
    assert!(texts.iter().any(|t| t.valid_until == Validity::LongTerm));
    for t in &texts {
        assert!(id_number_valid(&t.id_number), "{}", t.id_number);
        assert!(t.id_number.starts_with("110101"));
        assert_eq!(t.id_number.get(6..14), Some(t.birth_date.as_str()));
        let digit17 = t
            .id_number
            .as_bytes()
            .get(16)
            .map(|d| d - b'0')
            .expect("17 digits");
        let expected = if digit17 % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        };
        assert_eq!(t.sex, expected, "{}", t.id_number);
        assert!(t.nation.name.is_some());
        assert!(t.address.starts_with("北京市东城区测试路"));
        assert_eq!(t.issuer, "北京市公安局东城分局");
        assert!(t.valid_from.as_str() > t.birth_date.as_str());
    }
    // Photos differ per card.
    let cards = fake_resident_cards();
    assert_ne!(
        cards.first().map(|c| &c.photo),
        cards.get(1).map(|c| &c.photo)
    );
}

#[test]
fn long_term_is_encoded_as_on_a_card() {
    let texts = fake_resident_texts();
    let t = texts
        .iter()
        .find(|t| t.valid_until == Validity::LongTerm)
        .expect("a 长期 card");
    let block = encode_resident_text(t);
    let mut expected = vec![0x7F, 0x95, 0x1F, 0x67];
    expected.extend([0x20, 0x00].repeat(6));
    assert_eq!(block.get(204..220), Some(expected.as_slice()));
    // Anything else in that field is a date string, even if it is not a valid date.
    let mut other = t.clone();
    other.valid_until = Validity::Until("长期X".into());
    let ParsedText::Resident(back) = parse_text(&encode_resident_text(&other)).expect("parse")
    else {
        panic!("not resident");
    };
    assert_eq!(back.valid_until, Validity::Until("长期X".into()));
}

#[test]
fn resident_layout_offsets_match_the_reference() {
    let mut block = blank_text_block();
    let put = |b: &mut [u8; 256], off, width, s| write_ucs2_field(b, off, width, s);
    put(&mut block, 0, 30, "张三");
    put(&mut block, 30, 2, "2");
    put(&mut block, 32, 4, "46");
    put(&mut block, 36, 16, "19491231");
    put(&mut block, 52, 70, "北京市西城区某路1号");
    put(&mut block, 122, 36, "11010519491231002X");
    put(&mut block, 158, 30, "北京市公安局西城分局");
    put(&mut block, 188, 16, "20100101");
    put(&mut block, 204, 16, "20300101");
    assert_eq!(block.get(30..32), Some(&[0x32, 0x00][..]));
    let ParsedText::Resident(t) = parse_text(&block).expect("parse") else {
        panic!("not resident");
    };
    assert_eq!(t.name, "张三");
    assert_eq!(t.sex, Sex::Female);
    assert_eq!(t.nation.name, Some("德昂"));
    assert_eq!(t.nation.full_name().as_deref(), Some("德昂族"));
    assert_eq!(t.birth_date, "19491231");
    assert_eq!(t.address, "北京市西城区某路1号");
    assert_eq!(t.id_number, "11010519491231002X");
    assert_eq!(t.issuer, "北京市公安局西城分局");
    assert_eq!(t.valid_from, "20100101");
    assert_eq!(t.valid_until, Validity::Until("20300101".into()));
}

#[test]
fn unknown_codes_stay_raw() {
    let mut t = fake_resident_texts().remove(0);
    t.sex = Sex::Unrecognised("5".into());
    t.nation = Nation::from_code("99");
    let ParsedText::Resident(back) = parse_text(&encode_resident_text(&t)).expect("parse") else {
        panic!("not resident");
    };
    assert_eq!(back.sex, Sex::Unrecognised("5".into()));
    assert_eq!(back.sex.code(), "5");
    assert_eq!(back.sex.label(), "未知");
    assert_eq!(back.nation.code, "99");
    assert_eq!(back.nation.name, None);
    assert_eq!(back.nation.full_name(), None);
    for (code, sex) in [
        ("0", Sex::NotKnown),
        ("1", Sex::Male),
        ("2", Sex::Female),
        ("9", Sex::NotStated),
    ] {
        assert_eq!(Sex::from_code(code), sex);
        assert_eq!(sex.code(), code);
    }
    assert_eq!(Nation::from_code("97").full_name().as_deref(), Some("其他"));
    assert_eq!(
        Nation::from_code("98").full_name().as_deref(),
        Some("外国血统中国籍人士")
    );
}

#[test]
fn card_type_detection() {
    for (ch, expected) in [
        ("I", CardType::ForeignPermanent2017),
        ("Y", CardType::ForeignPermanent2023),
        ("J", CardType::HkMacauTaiwan),
        (" ", CardType::Resident),
        ("X", CardType::Resident),
        ("i", CardType::Resident),
    ] {
        let mut block = blank_text_block();
        write_ucs2_field(&mut block, 248, 2, ch);
        assert_eq!(CardType::detect(&block), expected, "{ch}");
        assert_eq!(parse_text(&block).expect("parse").card_type(), expected);
    }
    // NUL in the slot, or a short buffer: resident.
    let mut block = blank_text_block();
    block[248] = 0;
    assert_eq!(CardType::detect(&block), CardType::Resident);
    assert_eq!(CardType::detect(&[0x49, 0x00]), CardType::Resident);
}

#[test]
fn foreign_2017_fields_by_offset() {
    let mut b = blank_text_block();
    write_ucs2_field(&mut b, 0, 120, "TEST, ALPHA");
    write_ucs2_field(&mut b, 120, 2, "1");
    write_ucs2_field(&mut b, 122, 30, "CAN110090010001");
    write_ucs2_field(&mut b, 152, 6, "CAN");
    write_ucs2_field(&mut b, 158, 30, "测试甲");
    write_ucs2_field(&mut b, 188, 16, "20170601");
    write_ucs2_field(&mut b, 204, 16, "20270601");
    write_ucs2_field(&mut b, 220, 16, "19900101");
    write_ucs2_field(&mut b, 236, 4, "02");
    write_ucs2_field(&mut b, 240, 8, "1100");
    write_ucs2_field(&mut b, 248, 2, "I");
    let p = parse_text(&b).expect("parse");
    assert_eq!(p.card_type(), CardType::ForeignPermanent2017);
    assert_eq!(field(&p, "name_en").as_deref(), Some("TEST, ALPHA"));
    assert_eq!(field(&p, "sex").as_deref(), Some("1"));
    assert_eq!(field(&p, "id_number").as_deref(), Some("CAN110090010001"));
    assert_eq!(p.number(), Some("CAN110090010001"));
    assert_eq!(field(&p, "nationality").as_deref(), Some("CAN"));
    assert_eq!(field(&p, "name").as_deref(), Some("测试甲"));
    assert_eq!(field(&p, "valid_from").as_deref(), Some("20170601"));
    assert_eq!(field(&p, "valid_until").as_deref(), Some("20270601"));
    assert_eq!(field(&p, "birth_date").as_deref(), Some("19900101"));
    assert_eq!(field(&p, "card_version").as_deref(), Some("02"));
    assert_eq!(field(&p, "issuer_code").as_deref(), Some("1100"));
    assert_eq!(field(&p, "type_mark").as_deref(), Some("I"));
}

#[test]
fn foreign_2023_english_name_continues_at_220() {
    let long_name = "TESTPERSON, ALPHABETA GAMMADELTA EPSI LONZETA"; // 45 chars
    let mut b = blank_text_block();
    write_ucs2_field(&mut b, 0, 30, "测试乙");
    write_ucs2_field(&mut b, 30, 2, "2");
    write_ucs2_field(&mut b, 32, 4, "00");
    write_ucs2_field(&mut b, 36, 16, "19850203");
    write_ucs2_field(&mut b, 52, 70, long_name);
    write_ucs2_field(&mut b, 122, 36, "911124198502030021");
    write_ucs2_field(&mut b, 188, 16, "20240101");
    write_ucs2_field(&mut b, 204, 16, "20331231");
    write_ucs2_field(&mut b, 220, 22, long_name.get(35..).unwrap_or_default());
    write_ucs2_field(&mut b, 242, 6, "CAN");
    write_ucs2_field(&mut b, 248, 2, "Y");
    write_ucs2_field(&mut b, 250, 6, "BJ1");
    let p = parse_text(&b).expect("parse");
    assert_eq!(p.card_type(), CardType::ForeignPermanent2023);
    assert_eq!(field(&p, "name_en").as_deref(), Some(long_name));
    assert_eq!(field(&p, "name").as_deref(), Some("测试乙"));
    assert_eq!(field(&p, "renewal_count").as_deref(), Some("00"));
    assert_eq!(
        field(&p, "id_number").as_deref(),
        Some("911124198502030021")
    );
    assert_eq!(field(&p, "nationality").as_deref(), Some("CAN"));
    assert_eq!(field(&p, "previous_number_link").as_deref(), Some("BJ1"));

    // A short English name: the continuation is all spaces and trims away.
    let mut b2 = b;
    write_ucs2_field(&mut b2, 52, 70, &" ".repeat(35));
    write_ucs2_field(&mut b2, 52, 70, "SHORT, NAME");
    write_ucs2_field(&mut b2, 220, 22, &" ".repeat(11));
    let p2 = parse_text(&b2).expect("parse");
    assert_eq!(field(&p2, "name_en").as_deref(), Some("SHORT, NAME"));
}

#[test]
fn hk_macau_taiwan_fields_by_offset() {
    let mut b = blank_text_block();
    write_ucs2_field(&mut b, 0, 30, "测试丙");
    write_ucs2_field(&mut b, 30, 2, "1");
    write_ucs2_field(&mut b, 36, 16, "19800101");
    write_ucs2_field(&mut b, 52, 70, "北京市东城区测试路9号");
    write_ucs2_field(&mut b, 122, 36, "810000198001010013");
    write_ucs2_field(&mut b, 158, 30, "北京市公安局东城分局");
    write_ucs2_field(&mut b, 188, 16, "20200101");
    write_ucs2_field(&mut b, 204, 16, "20250101");
    write_ucs2_field(&mut b, 220, 18, "H12345678");
    write_ucs2_field(&mut b, 238, 4, "01");
    write_ucs2_field(&mut b, 248, 2, "J");
    let p = parse_text(&b).expect("parse");
    assert_eq!(p.card_type(), CardType::HkMacauTaiwan);
    assert_eq!(field(&p, "name").as_deref(), Some("测试丙"));
    assert_eq!(
        field(&p, "id_number").as_deref(),
        Some("810000198001010013")
    );
    assert_eq!(p.number(), Some("810000198001010013"));
    assert_eq!(field(&p, "permit_number").as_deref(), Some("H12345678"));
    assert_eq!(field(&p, "issue_count").as_deref(), Some("01"));
    assert_eq!(field(&p, "issuer").as_deref(), Some("北京市公安局东城分局"));
    // Debug output never shows the values.
    let dbg = format!("{p:?}");
    assert!(
        !dbg.contains("测试丙") && !dbg.contains("8100001980"),
        "{dbg}"
    );
}

#[test]
fn ucs2_decoding_flags_unpaired_surrogates_and_trims() {
    assert_eq!(
        decode_ucs2(&[0x4B, 0x6D, 0x20, 0x00, 0x00, 0x00]),
        ("测".into(), false)
    );
    assert_eq!(
        decode_ucs2(&[0x00, 0xD8, 0x31, 0x00]),
        ("\u{FFFD}1".into(), true)
    );
    // A proper surrogate pair is fine (U+20000).
    assert_eq!(
        decode_ucs2(&[0x40, 0xD8, 0x00, 0xDC]),
        ("\u{20000}".into(), false)
    );
    assert_eq!(decode_ucs2(&[0x31, 0x00, 0x32]), ("1".into(), false));
    assert_eq!(decode_ucs2(&[]), (String::new(), false));
    // Leading spaces are kept.
    assert_eq!(decode_ucs2(&[0x20, 0x00, 0x31, 0x00]), (" 1".into(), false));

    let mut block = encode_resident_text(&fake_resident_texts().remove(0));
    block[0] = 0x00;
    block[1] = 0xDC;
    let ParsedText::Resident(t) = parse_text(&block).expect("parse") else {
        panic!("not resident");
    };
    assert!(t.name.starts_with('\u{FFFD}'));
    assert_eq!(t.lossy_fields, ["name"]);
}

#[test]
fn wrong_block_length_is_an_error() {
    assert_eq!(
        parse_text(&[0x20; 255]),
        Err(CardError::WrongLength { len: 255 })
    );
    assert!(parse_text(&[0x20; 257]).is_err());
    assert!(parse_text(&[]).is_err());
}

#[test]
fn random_blocks_never_panic() {
    let mut rng = crate::test_util::Lcg(7);
    for _ in 0..3000 {
        let mut block = [0u8; 256];
        for b in &mut block {
            *b = rng.next() as u8;
        }
        if rng.below(2) == 0 {
            block[248] = [0x49, 0x59, 0x4A][rng.below(3) as usize];
            block[249] = 0;
        }
        let parsed = parse_text(&block).expect("256 bytes always parse");
        let _ = format!("{parsed:?}");
    }
}

#[test]
fn debug_masks_personal_fields() {
    let t = fake_resident_texts().remove(0);
    let dbg = format!("{t:?}");
    assert!(!dbg.contains("测试甲"), "{dbg}");
    assert!(!dbg.contains(&t.id_number), "{dbg}");
    assert!(!dbg.contains("测试路"), "{dbg}");
    assert!(dbg.contains("测**"), "{dbg}");
}
