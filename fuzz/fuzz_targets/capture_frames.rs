//! Camera frames and scanned pages as devices deliver them: the frame checks, the DHT detection
//! and stripping, the MJPEG stream splitter and the scanned-page checks take any bytes without
//! panicking, and what they accept is consistent (a checked frame's size and tables).
#![no_main]

use camera::frame::{check, has_huffman_tables, split_mjpeg, strip_huffman_tables};
use libfuzzer_sys::fuzz_target;
use sane::{PageFormat, check_page};

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = check(data) {
        assert!(info.width > 0 && info.height > 0);
        assert_eq!(has_huffman_tables(data), info.has_huffman_tables);
    }
    let stripped = strip_huffman_tables(data);
    assert!(stripped.len() <= data.len());
    let mut total = 0;
    for frame in split_mjpeg(data) {
        total += frame.len();
        let _ = check(frame);
    }
    assert!(total <= data.len());
    for format in [PageFormat::Jpeg, PageFormat::Png, PageFormat::Tiff] {
        let _ = check_page(format, data, 1 << 20);
    }
});
