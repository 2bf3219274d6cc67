//! Face images from chips and cards: the JPEG 2000 (JP2 or raw codestream) to JPEG conversion of
//! a travel document's DG2 face (`icao9303::face::to_jpeg`), and the GA 467 BMP wrapping of a
//! decoded WLT photo (`ga467::photo::bmp_from_bgr`). The JPEG 2000 decoder's own panics are
//! caught by `to_jpeg` (by design: they become errors), so this target restores the default panic
//! hook (libfuzzer-sys's aborts on any panic, even a caught one); a panic that escapes still
//! aborts the process, at the FFI boundary.
#![no_main]

use icao9303::face::to_jpeg;
use icao9303::lds::{FaceImage, ImageFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let _ = std::panic::take_hook();
    });
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let format = match mode % 3 {
        0 => ImageFormat::Jp2,
        1 => ImageFormat::J2k,
        _ => ImageFormat::Jpeg,
    };
    let converted = format != ImageFormat::Jpeg;
    let face = FaceImage {
        format,
        width: 0,
        height: 0,
        bytes: rest.to_vec(),
    };
    if let Ok(jpeg) = to_jpeg(&face) {
        // A JPEG face is kept as the chip stored it; a converted one is a JPEG we made.
        if converted {
            assert!(jpeg.starts_with(&[0xFF, 0xD8]));
        } else {
            assert_eq!(jpeg, face.bytes);
        }
    }
    let bmp = ga467::photo::bmp_from_bgr(rest);
    assert!(bmp.starts_with(b"BM"));
});
