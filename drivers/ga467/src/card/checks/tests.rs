use super::*;
use crate::card::{Nation, parse_text};
use crate::sim::{fake_other_texts, fake_resident_texts};

fn today() -> CivilDate {
    CivilDate::new(2026, 11, 27).expect("date")
}

fn results(card: &ParsedText) -> Vec<(&'static str, CheckResult)> {
    run_checks(card, today())
        .into_iter()
        .map(|c| (c.name, c.result))
        .collect()
}

fn check(card: &ParsedText, name: &str) -> Check {
    run_checks(card, today())
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

fn resident() -> ResidentTextBuilder {
    ResidentTextBuilder(fake_resident_texts().remove(0))
}

struct ResidentTextBuilder(crate::card::ResidentText);

impl ResidentTextBuilder {
    fn with(mut self, f: impl FnOnce(&mut crate::card::ResidentText)) -> ParsedText {
        f(&mut self.0);
        ParsedText::Resident(self.0)
    }
}

fn other(i: usize) -> ParsedText {
    fake_other_texts().remove(i)
}

#[test]
fn every_fake_card_passes_every_check() {
    let cards = fake_resident_texts()
        .into_iter()
        .map(ParsedText::Resident)
        .chain(fake_other_texts());
    for card in cards {
        // Also through the wire form: encode, parse, check.
        let reparsed = parse_text(&card.encode()).expect("parse");
        assert_eq!(reparsed, card);
        for c in run_checks(&reparsed, today()) {
            assert_eq!(c.result, CheckResult::Pass, "{:?}: {c:?}", card.card_type());
        }
    }
}

#[test]
fn which_checks_apply_to_which_card_type() {
    let names = |card: &ParsedText| -> Vec<&str> { results(card).iter().map(|r| r.0).collect() };
    let all = [
        "text_decoding",
        "card_type_consistent",
        "id_number_checksum",
        "sex_code_known",
        "nation_code_known",
        "birth_date_valid",
        "birth_date_matches_id",
        "sex_matches_id",
        "validity_period",
        "not_expired",
    ];
    assert_eq!(names(&resident().with(|_| ())), all);
    let without = |skip: &[&str]| -> Vec<&str> {
        all.iter().copied().filter(|n| !skip.contains(n)).collect()
    };
    // 'I': no check character, no birth date or sex inside the number, no nation.
    assert_eq!(
        names(&other(0)),
        without(&[
            "id_number_checksum",
            "nation_code_known",
            "birth_date_matches_id",
            "sex_matches_id"
        ])
    );
    assert_eq!(names(&other(1)), without(&["nation_code_known"]));
    assert_eq!(names(&other(2)), without(&["nation_code_known"]));
}

#[test]
fn mod_11_2_failure_names_the_expected_character() {
    let card = resident().with(|t| {
        t.id_number.pop();
        t.id_number.push('0');
    });
    let c = check(&card, "id_number_checksum");
    assert_eq!(c.result, CheckResult::Fail);
    assert!(c.detail.unwrap().contains("should be"));
    let card = resident().with(|t| t.id_number = "1101011990".into());
    assert_eq!(check(&card, "id_number_checksum").result, CheckResult::Fail);
    // A lower-case x is accepted as X (GB 11643 example).
    let card = resident().with(|t| {
        t.id_number = "11010519491231002x".into();
        t.birth_date = "19491231".into();
        t.sex = Sex::Female;
        t.valid_from = "20100101".into();
        t.valid_until = Validity::LongTerm;
    });
    assert!(
        results(&card).iter().all(|r| r.1 == CheckResult::Pass),
        "{:?}",
        results(&card)
    );
}

#[test]
fn dates_must_be_real_calendar_dates() {
    let card = resident().with(|t| t.birth_date = "19900230".into());
    let c = check(&card, "birth_date_valid");
    assert_eq!(c.result, CheckResult::Fail);
    assert!(c.detail.unwrap().contains("not a calendar date"));
    // The age rule cannot be applied without a birth date.
    assert_eq!(check(&card, "validity_period").result, CheckResult::Unknown);
    let card = resident().with(|t| t.birth_date = "20300101".into());
    assert!(
        check(&card, "birth_date_valid")
            .detail
            .unwrap()
            .contains("future")
    );
    let card = resident().with(|t| t.valid_from = "2020061".into());
    assert_eq!(check(&card, "validity_period").result, CheckResult::Fail);
    let card = resident().with(|t| t.valid_until = Validity::Until("20400631".into()));
    assert_eq!(check(&card, "validity_period").result, CheckResult::Fail);
    assert_eq!(check(&card, "not_expired").result, CheckResult::Unknown);
}

#[test]
fn birth_date_and_sex_must_agree_with_the_number() {
    let card = resident().with(|t| t.birth_date = "19900308".into());
    let c = check(&card, "birth_date_matches_id");
    assert_eq!(c.result, CheckResult::Fail);
    assert!(c.detail.unwrap().contains("19900307"));
    let card = resident().with(|t| t.sex = Sex::Female);
    let c = check(&card, "sex_matches_id");
    assert_eq!(c.result, CheckResult::Fail);
    assert!(c.detail.unwrap().contains("male"));
    let card = resident().with(|t| t.sex = Sex::NotStated);
    assert_eq!(check(&card, "sex_matches_id").result, CheckResult::Unknown);
    assert_eq!(check(&card, "sex_code_known").result, CheckResult::Pass);
    let card = resident().with(|t| t.sex = Sex::Unrecognised("3".into()));
    assert_eq!(check(&card, "sex_code_known").result, CheckResult::Fail);
    // 'J' and 'Y' numbers carry them too; the 'Y' detail says its layout is inferred.
    let ParsedText::Foreign2023(mut y) = other(1) else {
        panic!("not Y")
    };
    y.sex = Sex::Male;
    let c = check(&ParsedText::Foreign2023(y), "sex_matches_id");
    assert_eq!(c.result, CheckResult::Fail);
    assert!(c.detail.unwrap().contains("inferred"));
    let ParsedText::HkMacauTaiwan(mut j) = other(2) else {
        panic!("not J")
    };
    j.birth_date = "19800102".into();
    assert_eq!(
        check(&ParsedText::HkMacauTaiwan(j), "birth_date_matches_id").result,
        CheckResult::Fail
    );
}

#[test]
fn resident_validity_follows_the_age_rule() {
    // 测试甲 was 30 at issue: 20 years. 10 years is wrong.
    let card = resident().with(|t| t.valid_until = Validity::Until("20300610".into()));
    let c = check(&card, "validity_period");
    assert_eq!(c.result, CheckResult::Fail);
    let detail = c.detail.unwrap();
    assert!(
        detail.contains("age 30") && detail.contains("20 years"),
        "{detail}"
    );
    // 长期 at 30 is wrong too.
    let card = resident().with(|t| t.valid_until = Validity::LongTerm);
    assert_eq!(check(&card, "validity_period").result, CheckResult::Fail);
    // Under 16: 5 years; 16–25: 10; 26–45: 20; 46+: 长期.
    for (birth, from, until, ok) in [
        (
            "20150101",
            "20200101",
            Validity::Until("20250101".into()),
            true,
        ),
        (
            "20150101",
            "20200101",
            Validity::Until("20300101".into()),
            false,
        ),
        (
            "20000101",
            "20200101",
            Validity::Until("20300101".into()),
            true,
        ),
        ("19740101", "20200101", Validity::LongTerm, true),
        (
            "19750101",
            "20200101",
            Validity::Until("20400101".into()),
            true,
        ),
        // Issued on 29 February: the end may be 28 February or 1 March.
        (
            "19900101",
            "20200229",
            Validity::Until("20400229".into()),
            true,
        ),
        (
            "20000101",
            "20200229",
            Validity::Until("20300228".into()),
            true,
        ),
        (
            "20000101",
            "20200229",
            Validity::Until("20300301".into()),
            true,
        ),
        (
            "20000101",
            "20200229",
            Validity::Until("20300302".into()),
            false,
        ),
    ] {
        let card = ParsedText::Resident(crate::card::ResidentText {
            birth_date: birth.into(),
            valid_from: from.into(),
            valid_until: until.clone(),
            ..match resident().with(|_| ()) {
                ParsedText::Resident(t) => t,
                _ => unreachable!(),
            }
        });
        let got = check(&card, "validity_period");
        assert_eq!(
            got.result == CheckResult::Pass,
            ok,
            "{birth} {from} {until:?}: {got:?}"
        );
    }
}

#[test]
fn validity_must_be_ordered_and_started() {
    let card = resident().with(|t| t.valid_from = "19800101".into());
    assert!(
        check(&card, "validity_period")
            .detail
            .unwrap()
            .contains("before the birth date")
    );
    let card = resident().with(|t| t.valid_from = "20270101".into());
    assert!(
        check(&card, "validity_period")
            .detail
            .unwrap()
            .contains("after today")
    );
    // Foreign cards: only form and order; no 长期.
    let ParsedText::Foreign2017(mut i) = other(0) else {
        panic!("not I")
    };
    i.valid_until = Validity::Until("20170601".into());
    assert_eq!(
        check(&ParsedText::Foreign2017(i.clone()), "validity_period").result,
        CheckResult::Fail
    );
    i.valid_until = Validity::LongTerm;
    assert_eq!(
        check(&ParsedText::Foreign2017(i), "validity_period").result,
        CheckResult::Fail
    );
}

#[test]
fn an_expired_card_is_flagged_not_rejected() {
    let card = resident().with(|t| {
        t.birth_date = "19900307".into();
        t.valid_from = "20000610".into();
        t.valid_until = Validity::Until("20100610".into());
    });
    let c = check(&card, "not_expired");
    assert_eq!(c.result, CheckResult::Fail);
    assert!(c.detail.unwrap().contains("expired on 2010-06-10"));
    // The last valid day is still valid.
    let card = resident().with(|t| {
        t.birth_date = "20000101".into();
        t.valid_from = "20161127".into();
        t.valid_until = Validity::Until("20261127".into());
    });
    assert_eq!(check(&card, "not_expired").result, CheckResult::Pass);
    assert_eq!(check(&card, "validity_period").result, CheckResult::Pass);
}

#[test]
fn card_type_consistency() {
    let card = resident().with(|t| t.id_number = with_check17("81000019900307001"));
    assert_eq!(
        check(&card, "card_type_consistent").result,
        CheckResult::Fail
    );
    let ParsedText::Foreign2017(mut i) = other(0) else {
        panic!("not I")
    };
    i.id_number = "CA1110090010001".into();
    assert_eq!(
        check(&ParsedText::Foreign2017(i), "card_type_consistent").result,
        CheckResult::Fail
    );
    let ParsedText::Foreign2023(mut y) = other(1) else {
        panic!("not Y")
    };
    y.id_number = with_check17("11010119850203002");
    let c = check(&ParsedText::Foreign2023(y), "card_type_consistent");
    assert_eq!(c.result, CheckResult::Fail);
    assert!(c.detail.unwrap().contains("starts with 9"));
    let ParsedText::HkMacauTaiwan(mut j) = other(2) else {
        panic!("not J")
    };
    j.id_number = with_check17("11000019800101001");
    assert_eq!(
        check(&ParsedText::HkMacauTaiwan(j), "card_type_consistent").result,
        CheckResult::Fail
    );
}

#[test]
fn nation_and_decoding() {
    let card = resident().with(|t| t.nation = Nation::from_code("57"));
    let c = check(&card, "nation_code_known");
    assert_eq!(c.result, CheckResult::Fail);
    assert!(c.detail.unwrap().contains("\"57\""));
    let mut block = resident().with(|_| ()).encode();
    block[52] = 0x00;
    block[53] = 0xD8;
    let card = parse_text(&block).expect("parse");
    let c = check(&card, "text_decoding");
    assert_eq!(c.result, CheckResult::Fail);
    assert!(c.detail.unwrap().contains("address"));
}

fn with_check17(first17: &str) -> String {
    format!("{first17}{}", id_check_char(first17).expect("17 digits"))
}
