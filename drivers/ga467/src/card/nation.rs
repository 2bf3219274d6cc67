//! Nation (民族) codes, GB 3304, as printed on the card (reference §7.6).
//!
//! Copied from the reference table. Known peer mistakes this table avoids: 德昴 for 46, 克尔克孜 for
//! 29, 乌兹别克 for 43, an extra "穿青人" entry, 畬 (U+756C) instead of 畲 (U+7572) for 22, and 外国血统
//! shortened for 98.

/// `(code, name)` for every code; names are without the 族 suffix.
pub const NATIONS: [(&str, &str); 58] = [
    ("01", "汉"),
    ("02", "蒙古"),
    ("03", "回"),
    ("04", "藏"),
    ("05", "维吾尔"),
    ("06", "苗"),
    ("07", "彝"),
    ("08", "壮"),
    ("09", "布依"),
    ("10", "朝鲜"),
    ("11", "满"),
    ("12", "侗"),
    ("13", "瑶"),
    ("14", "白"),
    ("15", "土家"),
    ("16", "哈尼"),
    ("17", "哈萨克"),
    ("18", "傣"),
    ("19", "黎"),
    ("20", "傈僳"),
    ("21", "佤"),
    ("22", "畲"),
    ("23", "高山"),
    ("24", "拉祜"),
    ("25", "水"),
    ("26", "东乡"),
    ("27", "纳西"),
    ("28", "景颇"),
    ("29", "柯尔克孜"),
    ("30", "土"),
    ("31", "达斡尔"),
    ("32", "仫佬"),
    ("33", "羌"),
    ("34", "布朗"),
    ("35", "撒拉"),
    ("36", "毛南"),
    ("37", "仡佬"),
    ("38", "锡伯"),
    ("39", "阿昌"),
    ("40", "普米"),
    ("41", "塔吉克"),
    ("42", "怒"),
    ("43", "乌孜别克"),
    ("44", "俄罗斯"),
    ("45", "鄂温克"),
    ("46", "德昂"),
    ("47", "保安"),
    ("48", "裕固"),
    ("49", "京"),
    ("50", "塔塔尔"),
    ("51", "独龙"),
    ("52", "鄂伦春"),
    ("53", "赫哲"),
    ("54", "门巴"),
    ("55", "珞巴"),
    ("56", "基诺"),
    ("97", "其他"),
    ("98", "外国血统中国籍人士"),
];

/// The printed name for a two-digit code, or `None` when the code is not in GB 3304.
pub fn nation_name(code: &str) -> Option<&'static str> {
    NATIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete_and_spelled_right() {
        assert_eq!(NATIONS.len(), 58);
        for n in 1..=56 {
            assert!(nation_name(&format!("{n:02}")).is_some(), "{n}");
        }
        assert_eq!(nation_name("22"), Some("\u{7572}"));
        assert_eq!(nation_name("46"), Some("德昂"));
        assert_eq!(nation_name("29"), Some("柯尔克孜"));
        assert_eq!(nation_name("43"), Some("乌孜别克"));
        assert_eq!(nation_name("98"), Some("外国血统中国籍人士"));
        assert_eq!(nation_name("57"), None);
        assert_eq!(nation_name("1"), None);
        assert!(NATIONS.iter().all(|(_, n)| !n.contains("穿青")));
    }
}
