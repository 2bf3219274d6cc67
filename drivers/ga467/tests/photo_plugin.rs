//! The run-time WLT decoder path against a real shared library: the test compiles a small
//! stand-in (`rustc --crate-type cdylib`) that exports the `unpack` and `hxgc_Wlt2Bmp`
//! signatures, then loads it through `ga467::photo`, exactly as the daemon does.
#![cfg(feature = "wlt-plugin")]

use std::path::{Path, PathBuf};
use std::process::Command;

use ga467::photo::{BMP_LEN, PhotoError, Signature, WltDecoder};

/// The stand-in: `unpack` writes raw BGR (each byte derived from the WLT input) and fails on a
/// WLT starting with FF; `hxgc_Wlt2Bmp` writes a finished BMP header plus pixels and returns 1.
const STUB: &str = r#"
const RAW: usize = 102 * 126 * 3;
#[no_mangle]
pub extern "C" fn unpack(wlt: *const u8, out: *mut u8, flag: i32) -> i32 {
    let wlt = unsafe { std::slice::from_raw_parts(wlt, 1024) };
    let out = unsafe { std::slice::from_raw_parts_mut(out, RAW) };
    if flag != 1 || wlt[0] == 0xFF { return -1; }
    for (i, b) in out.iter_mut().enumerate() { *b = wlt[i % 1024] ^ (i as u8); }
    1
}
#[no_mangle]
pub extern "C" fn hxgc_Wlt2Bmp(wlt: *const u8, bmp: *mut u8, _flag: i32) -> i32 {
    let wlt = unsafe { std::slice::from_raw_parts(wlt, 1024) };
    let bmp = unsafe { std::slice::from_raw_parts_mut(bmp, 38862) };
    bmp[0] = b'B'; bmp[1] = b'M';
    bmp[2..6].copy_from_slice(&38862u32.to_le_bytes());
    for b in bmp[54..].iter_mut() { *b = wlt[1]; }
    1
}
"#;

fn build_stub(dir: &Path) -> PathBuf {
    let src = dir.join("wltstub.rs");
    std::fs::write(&src, STUB).expect("write stub source");
    let lib = dir.join("libwltstub.so");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = Command::new(rustc)
        .args(["--edition", "2021", "--crate-type", "cdylib", "-O", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("run rustc");
    assert!(status.success(), "building the stand-in library failed");
    lib
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ga467-wlt-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn a_vendor_library_decodes_through_each_signature() {
    let dir = scratch("ok");
    let lib = build_stub(&dir);
    let wlt: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();

    let unpack = WltDecoder::load(&lib, Signature::Unpack).expect("load unpack");
    let bmp = unpack.decode(&wlt).expect("decode");
    assert_eq!(bmp.len(), BMP_LEN);
    assert_eq!(&bmp[..2], b"BM");
    // The first raw pixel row lands at offset 54, padded to 308 bytes.
    assert_eq!(bmp[54], wlt[0]);
    assert_eq!(bmp[55], wlt[1] ^ 1);
    assert_eq!(&bmp[54 + 306..54 + 308], &[0, 0]);

    let hxgc = WltDecoder::load(&lib, Signature::HxgcWlt2Bmp).expect("load hxgc");
    let bmp = hxgc.decode(&wlt).expect("decode");
    assert_eq!(bmp.len(), BMP_LEN);
    assert!(bmp[54..].iter().all(|b| *b == wlt[1]));

    // A decode failure is an error naming the function and its code; the WLT is untouched.
    let mut bad = wlt.clone();
    bad[0] = 0xFF;
    let err = unpack.decode(&bad).expect_err("stub refuses FF");
    assert!(matches!(err, PhotoError::Failed { code: -1, .. }), "{err}");
    assert!(err.to_string().contains("unpack returned -1"), "{err}");
    assert!(matches!(
        unpack.decode(&wlt[..100]),
        Err(PhotoError::WrongInput { len: 100 })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn loading_errors_name_the_library_and_the_symbol() {
    let dir = scratch("err");
    let lib = build_stub(&dir);
    // A library that is not a shared object.
    let junk = dir.join("libjunk.so");
    std::fs::write(&junk, b"not an ELF file").expect("write");
    let err = WltDecoder::load(&junk, Signature::Unpack).expect_err("not a library");
    assert!(err.to_string().contains("libjunk.so"), "{err}");
    // The stand-in exports both symbols, so check the missing-symbol path with libc's name.
    let libc = Path::new("libc.so.6");
    let err = WltDecoder::load(libc, Signature::HxgcWlt2Bmp).expect_err("libc has no decoder");
    assert!(
        err.to_string().contains("does not export hxgc_Wlt2Bmp"),
        "{err}"
    );
    drop(lib);
    std::fs::remove_dir_all(&dir).ok();
}
