//! SW3 status codes sent by the reader (reference §4).
//!
//! Only codes that appear on the wire live here. Host-side failures (port, timeout, framing) are
//! [`crate::ReaderError`] variants, never fake SW3 values.

/// 操作成功: success.
pub const OK: u8 = 0x90;
/// 证/卡中此项无内容: item absent (appended address, fingerprint).
pub const NO_CONTENT: u8 = 0x91;
/// 寻找证/卡成功: card found (`20 01` only).
pub const CARD_FOUND: u8 = 0x9F;
/// 接收业务终端数据的校验和错: the reader saw a bad checksum in our frame.
pub const BAD_CHECKSUM: u8 = 0x10;
/// 接收业务终端数据的长度错: the reader saw a bad length in our frame.
pub const BAD_LENGTH: u8 = 0x11;
/// 接收业务终端的命令错误: bad command, parameter or order.
pub const BAD_COMMAND: u8 = 0x21;
/// 越权操作: unauthorised operation.
pub const UNAUTHORISED: u8 = 0x23;
/// 无法识别的错误: unknown error.
pub const UNKNOWN_ERROR: u8 = 0x24;
/// 证/卡认证SAM_V失败: the card rejected the SAM.
pub const CARD_REJECTED_SAM: u8 = 0x31;
/// SAM_V认证证/卡失败: the SAM rejected the card (fake or damaged).
pub const SAM_REJECTED_CARD: u8 = 0x32;
/// 信息验证错误: information verification error.
pub const VERIFY_FAILED: u8 = 0x33;
/// 无法识别的卡类型: unknown card type.
pub const UNKNOWN_CARD_TYPE: u8 = 0x40;
/// 读证/卡操作失败: read failed (card moved).
pub const READ_FAILED: u8 = 0x41;
/// 取随机数失败: get-random failed.
pub const RANDOM_FAILED: u8 = 0x47;
/// SAM_V自检失败: SAM self-test failed.
pub const SAM_SELF_TEST_FAILED: u8 = 0x60;
/// SAM_V没经过授权: SAM not authorised.
pub const SAM_NOT_AUTHORISED: u8 = 0x66;
/// 寻找证/卡失败: no card in the field.
pub const NO_CARD: u8 = 0x80;
/// 选取证/卡失败: select failed (card gone).
pub const SELECT_FAILED: u8 = 0x81;

/// English and Chinese text for an SW3 code; unknown codes get a generic text (the caller keeps the
/// raw byte).
pub fn describe(sw3: u8) -> &'static str {
    match sw3 {
        OK => "success (操作成功)",
        NO_CONTENT => "item absent on card (证/卡中此项无内容)",
        CARD_FOUND => "card found (寻找证/卡成功)",
        BAD_CHECKSUM => "reader got a bad checksum from host (接收业务终端数据的校验和错)",
        BAD_LENGTH => "reader got a bad length from host (接收业务终端数据的长度错)",
        BAD_COMMAND => "bad command, parameter or order (接收业务终端的命令错误)",
        UNAUTHORISED => "unauthorised operation (越权操作)",
        UNKNOWN_ERROR => "unknown error (无法识别的错误)",
        CARD_REJECTED_SAM => "card rejected the SAM (证/卡认证SAM_V失败)",
        SAM_REJECTED_CARD => "SAM rejected the card (SAM_V认证证/卡失败)",
        VERIFY_FAILED => "information verification error (信息验证错误)",
        UNKNOWN_CARD_TYPE => "unknown card type (无法识别的卡类型)",
        READ_FAILED => "read failed, card moved (读证/卡操作失败)",
        RANDOM_FAILED => "get-random failed (取随机数失败)",
        SAM_SELF_TEST_FAILED => "SAM self-test failed (SAM_V自检失败)",
        SAM_NOT_AUTHORISED => "SAM not authorised (SAM_V没经过授权)",
        NO_CARD => "no card in field (寻找证/卡失败)",
        SELECT_FAILED => "select card failed (选取证/卡失败)",
        _ => "unrecognised status code (未知状态码)",
    }
}

/// True for codes listed in §4.
pub fn is_known(sw3: u8) -> bool {
    !describe(sw3).starts_with("unrecognised")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_codes() {
        assert!(describe(0x9F).contains("寻找证/卡成功"));
        assert!(describe(0x60).contains("self-test"));
        assert!(is_known(0x41));
        assert!(!is_known(0x42));
        assert!(describe(0x42).contains("unrecognised"));
        let listed = [
            0x90, 0x91, 0x9F, 0x10, 0x11, 0x21, 0x23, 0x24, 0x31, 0x32, 0x33, 0x40, 0x41, 0x47,
            0x60, 0x66, 0x80, 0x81,
        ];
        assert_eq!((0..=255u8).filter(|c| is_known(*c)).count(), listed.len());
        assert!(listed.iter().all(|c| is_known(*c)));
    }
}
