//! ID-number check character (GB 11643 / ISO 7064 MOD 11-2, reference §9) and masking helpers for
//! logs: personal data never goes to a log in clear.

/// Weights of digits 1–17.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character indexed by `S mod 11`.
const CHECK: &[u8; 11] = b"10X98765432";

/// The check character for the first 17 digits, or `None` unless `first17` is exactly 17 ASCII
/// digits.
pub fn id_check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != WEIGHTS.len() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    CHECK.get((sum % 11) as usize).map(|c| char::from(*c))
}

/// True when `n` is 17 digits plus the matching check character (a lower-case `x` counts as `X`).
pub fn id_number_valid(n: &str) -> bool {
    if n.len() != 18 || !n.is_ascii() {
        return false;
    }
    let (first17, last) = n.split_at(17);
    let last = last.to_ascii_uppercase();
    id_check_char(first17).is_some_and(|c| last.starts_with(c))
}

/// First four and last four characters, every character between them as `*`; shorter than nine
/// characters, all `*`. `"11010519491231002X"` → `"1101**********002X"`.
pub fn mask_id_number(n: &str) -> String {
    let count = n.chars().count();
    if count < 9 {
        return "*".repeat(count);
    }
    n.chars()
        .enumerate()
        .map(|(i, c)| if i < 4 || i >= count - 4 { c } else { '*' })
        .collect()
}

/// First character, then `*` for each remaining character: `"测试甲"` → `"测**"`.
pub fn mask_name(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| if i == 0 { c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        // GB 11643 appendix example: passes.
        assert_eq!(id_check_char("11010519491231002"), Some('X'));
        assert!(id_number_valid("11010519491231002X"));
        assert!(id_number_valid("11010519491231002x"));
        // kinshines sample: fails, the computed check is 7.
        assert_eq!(id_check_char("11010119760805689"), Some('7'));
        assert!(!id_number_valid("110101197608056896"));
        assert!(id_number_valid("110101197608056897"));
    }

    #[test]
    fn rejects_malformed_numbers() {
        assert_eq!(id_check_char("1101051949123100"), None);
        assert_eq!(id_check_char("1101051949123100A"), None);
        assert!(!id_number_valid(""));
        assert!(!id_number_valid("11010519491231002"));
        assert!(!id_number_valid("11010519491231002XX"));
        assert!(!id_number_valid("1101051949123100测"));
        assert!(!id_number_valid("X1010519491231002X"));
    }

    #[test]
    fn masking() {
        assert_eq!(mask_id_number("11010519491231002X"), "1101**********002X");
        assert_eq!(mask_id_number("12345678"), "********");
        assert_eq!(mask_id_number("123456789"), "1234*6789");
        assert_eq!(mask_id_number(""), "");
        assert_eq!(mask_name("测试甲"), "测**");
        assert_eq!(mask_name("张"), "张");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_name("ZHANG SAN"), "Z********");
    }
}
