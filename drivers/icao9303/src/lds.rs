//! The Logical Data Structure (Doc 9303-10): EF.COM, DG1 (MRZ), DG2 (face), DG11 (additional
//! personal details), DG12 (additional document details). Parsers are total; errors name the
//! file and what is wrong where.

use crate::mrz::Mrz;
use crate::tlv::{self, Tlv};

/// A file of the LDS by what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LdsFile {
    Com,
    Sod,
    /// DG1..=DG16.
    Dg(u8),
}

impl LdsFile {
    /// File identifier under the eMRTD application.
    pub fn fid(self) -> u16 {
        match self {
            LdsFile::Com => 0x011E,
            LdsFile::Sod => 0x011D,
            LdsFile::Dg(n) => 0x0100 | u16::from(n),
        }
    }

    /// The file's outer tag.
    pub fn tag(self) -> u32 {
        match self {
            LdsFile::Com => 0x60,
            LdsFile::Sod => 0x77,
            LdsFile::Dg(n) => dg_tag(n).unwrap_or(0),
        }
    }

    pub fn name(self) -> String {
        match self {
            LdsFile::Com => "EF.COM".into(),
            LdsFile::Sod => "EF.SOD".into(),
            LdsFile::Dg(n) => format!("DG{n}"),
        }
    }
}

const DG_TAGS: [u32; 16] = [
    0x61, 0x75, 0x63, 0x76, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70,
];

/// DG number → its tag (DG1 `61`, DG2 `75`, DG11 `6B`...).
pub fn dg_tag(n: u8) -> Option<u32> {
    DG_TAGS.get(usize::from(n).wrapping_sub(1)).copied()
}

/// Tag → DG number.
pub fn dg_of_tag(tag: u32) -> Option<u8> {
    DG_TAGS.iter().position(|t| *t == tag).map(|i| i as u8 + 1)
}

/// What is wrong with a file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {what}")]
pub struct LdsError {
    pub file: String,
    pub what: String,
}

pub(crate) fn lds_err(file: &str, what: impl Into<String>) -> LdsError {
    LdsError {
        file: file.into(),
        what: what.into(),
    }
}

fn outer<'a>(file: &str, bytes: &'a [u8], tag: u32) -> Result<Tlv<'a>, LdsError> {
    let (tlv, _) = tlv::parse_one(bytes).map_err(|e| lds_err(file, e.to_string()))?;
    if tlv.tag != tag {
        return Err(lds_err(
            file,
            format!("starts with tag {:02X}, expected {tag:02X}", tlv.tag),
        ));
    }
    Ok(tlv)
}

fn objects<'a>(file: &str, context: &str, bytes: &'a [u8]) -> Result<Vec<Tlv<'a>>, LdsError> {
    tlv::parse_all(bytes).map_err(|e| lds_err(file, format!("{context}: {e}")))
}

/// EF.COM: versions and the data groups present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Com {
    /// `0107` → "1.7".
    pub lds_version: Option<String>,
    pub unicode_version: Option<String>,
    /// DG numbers from the tag list, in order.
    pub data_groups: Vec<u8>,
}

pub fn parse_com(bytes: &[u8]) -> Result<Com, LdsError> {
    let com = outer("EF.COM", bytes, 0x60)?;
    let mut out = Com {
        lds_version: None,
        unicode_version: None,
        data_groups: Vec::new(),
    };
    for o in objects("EF.COM", "60", com.value)? {
        match o.tag {
            0x5F01 => {
                let v = String::from_utf8_lossy(o.value);
                out.lds_version = Some(match v.len() {
                    4 if v.is_ascii() => format!(
                        "{}.{}",
                        v[..2].trim_start_matches('0'),
                        v[2..].trim_start_matches('0')
                    ),
                    _ => v.into_owned(),
                });
            }
            0x5F36 => out.unicode_version = Some(String::from_utf8_lossy(o.value).into_owned()),
            0x5C => {
                let mut rest = o.value;
                while !rest.is_empty() {
                    // Tags in the list are one byte (61..70); a two-byte tag is skipped whole.
                    let (tag, len) = match rest {
                        [b, second, ..] if b & 0x1F == 0x1F => {
                            ((u32::from(*b) << 8) | u32::from(*second), 2)
                        }
                        [b, ..] => (u32::from(*b), 1),
                        [] => break,
                    };
                    if let Some(n) = dg_of_tag(tag) {
                        out.data_groups.push(n);
                    }
                    rest = &rest[len.min(rest.len())..];
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// DG1: the MRZ as stored on the chip.
pub fn parse_dg1(bytes: &[u8]) -> Result<Mrz, LdsError> {
    let dg1 = outer("DG1", bytes, 0x61)?;
    let mrz = objects("DG1", "61", dg1.value)?
        .into_iter()
        .find(|o| o.tag == 0x5F1F)
        .ok_or_else(|| lds_err("DG1", "MRZ data object 5F1F missing"))?;
    let text =
        std::str::from_utf8(mrz.value).map_err(|_| lds_err("DG1", "5F1F is not ASCII text"))?;
    Mrz::parse(text).map_err(|e| lds_err("DG1", e.to_string()))
}

/// How a face image is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    /// JPEG 2000 in its JP2 file format.
    Jp2,
    /// A raw JPEG 2000 codestream (Chinese passports).
    J2k,
}

impl ImageFormat {
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageFormat::Jpeg)
        } else if bytes.starts_with(&[
            0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A,
        ]) {
            Some(ImageFormat::Jp2)
        } else if bytes.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) {
            Some(ImageFormat::J2k)
        } else {
            None
        }
    }

    /// The media type for the evidence blob.
    pub fn media_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Jp2 => "image/jp2",
            ImageFormat::J2k => "image/j2c",
        }
    }
}

/// A face image from DG2, as stored on the chip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceImage {
    pub format: ImageFormat,
    /// Width and height from the ISO 19794-5 image information (0 when absent).
    pub width: u16,
    pub height: u16,
    pub bytes: Vec<u8>,
}

/// ISO/IEC 19794-5 facial record: general header "FAC\0" + version + length + count (14 bytes),
/// facial information (20 bytes + 8 per feature point), image information (12 bytes), image.
fn face_of_record(record: &[u8]) -> Result<FaceImage, String> {
    let sniff_anywhere = |what: &str| -> Result<FaceImage, String> {
        // Some chips put other bytes before the image (mrtdreader#2 found a JP2 at offset 89):
        // the first image signature wins.
        (0..record.len())
            .find_map(|i| {
                ImageFormat::sniff(&record[i..]).map(|format| FaceImage {
                    format,
                    width: 0,
                    height: 0,
                    bytes: record[i..].to_vec(),
                })
            })
            .ok_or_else(|| format!("{what}, and no JPEG or JPEG 2000 signature in the record"))
    };
    if !record.starts_with(b"FAC\0") {
        return sniff_anywhere(
            "the biometric data does not start with the ISO 19794-5 'FAC' header",
        );
    }
    let Some(&[fp_hi, fp_lo]) = record
        .get(18..20)
        .and_then(|s| <&[u8; 2]>::try_from(s).ok())
    else {
        return Err("ISO 19794-5 record shorter than its headers".into());
    };
    let feature_points = usize::from(u16::from_be_bytes([fp_hi, fp_lo]));
    let info = 14 + 20 + 8 * feature_points;
    let Some(image_info) = record.get(info..info + 12) else {
        return sniff_anywhere("ISO 19794-5 image information runs past the end");
    };
    let width = u16::from_be_bytes([image_info[2], image_info[3]]);
    let height = u16::from_be_bytes([image_info[4], image_info[5]]);
    let image = &record[info + 12..];
    match ImageFormat::sniff(image) {
        Some(format) => Ok(FaceImage {
            format,
            width,
            height,
            bytes: image.to_vec(),
        }),
        None => sniff_anywhere(&format!("no image signature at offset {}", info + 12)),
    }
}

/// DG2: every face image it holds (normally one).
pub fn parse_dg2(bytes: &[u8]) -> Result<Vec<FaceImage>, LdsError> {
    let file = "DG2";
    let dg2 = outer(file, bytes, 0x75)?;
    let group = objects(file, "75", dg2.value)?
        .into_iter()
        .find(|o| o.tag == 0x7F61)
        .ok_or_else(|| lds_err(file, "biometric information group template 7F61 missing"))?;
    let mut faces = Vec::new();
    for (i, bit) in objects(file, "7F61", group.value)?
        .into_iter()
        .filter(|o| o.tag == 0x7F60)
        .enumerate()
    {
        let inner = objects(file, &format!("7F60 #{}", i + 1), bit.value)?;
        if inner.iter().any(|o| o.tag == 0x7F2E) {
            return Err(lds_err(
                file,
                "the face image is enciphered (7F2E), not supported",
            ));
        }
        let data = inner.iter().find(|o| o.tag == 0x5F2E).ok_or_else(|| {
            lds_err(
                file,
                format!("7F60 #{}: biometric data 5F2E missing", i + 1),
            )
        })?;
        faces.push(
            face_of_record(data.value)
                .map_err(|e| lds_err(file, format!("7F60 #{}: {e}", i + 1)))?,
        );
    }
    if faces.is_empty() {
        return Err(lds_err(file, "no biometric information template 7F60"));
    }
    Ok(faces)
}

/// DG11: additional personal details (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dg11 {
    /// 5F0E, `SURNAME<<GIVEN` in the holder's script as issued (Chinese for CS/CD permits).
    pub full_name: Option<String>,
    pub other_names: Vec<String>,
    /// 5F10.
    pub personal_number: Option<String>,
    /// 5F2B, `YYYYMMDD`.
    pub full_birth_date: Option<String>,
    pub place_of_birth: Option<String>,
    pub address: Option<String>,
    pub telephone: Option<String>,
    pub profession: Option<String>,
    pub title: Option<String>,
    pub personal_summary: Option<String>,
    pub other_travel_documents: Option<String>,
    pub custody: Option<String>,
}

/// DG12: additional document details (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dg12 {
    pub issuing_authority: Option<String>,
    /// 5F26, `YYYYMMDD`.
    pub issue_date: Option<String>,
    pub other_persons: Option<String>,
    pub endorsements: Option<String>,
    pub tax_exit: Option<String>,
    /// 5F55, `YYYYMMDDhhmmss`.
    pub personalisation_time: Option<String>,
    pub personalisation_device: Option<String>,
}

fn text(value: &[u8]) -> String {
    // The LDS stores these as UTF-8; invalid bytes are shown, not dropped.
    String::from_utf8_lossy(value)
        .trim_end_matches('<')
        .to_string()
}

/// Every primitive object under `value`, descending into constructed templates (DG11's `A0`
/// other-names template).
fn leaves<'a>(
    file: &str,
    value: &'a [u8],
    depth: usize,
    out: &mut Vec<Tlv<'a>>,
) -> Result<(), LdsError> {
    for o in objects(file, "template", value)? {
        if o.constructed() && depth < 4 {
            leaves(file, o.value, depth + 1, out)?;
        } else {
            out.push(o);
        }
    }
    Ok(())
}

pub fn parse_dg11(bytes: &[u8]) -> Result<Dg11, LdsError> {
    let dg = outer("DG11", bytes, 0x6B)?;
    let mut all = Vec::new();
    leaves("DG11", dg.value, 0, &mut all)?;
    let mut out = Dg11::default();
    for o in all {
        let v = Some(text(o.value));
        match o.tag {
            0x5F0E => out.full_name = v,
            0x5F0F => out.other_names.push(text(o.value)),
            0x5F10 => out.personal_number = v,
            0x5F2B => out.full_birth_date = v,
            0x5F11 => out.place_of_birth = v,
            0x5F42 => out.address = v,
            0x5F12 => out.telephone = v,
            0x5F13 => out.profession = v,
            0x5F14 => out.title = v,
            0x5F15 => out.personal_summary = v,
            0x5F17 => out.other_travel_documents = v,
            0x5F18 => out.custody = v,
            _ => {}
        }
    }
    Ok(out)
}

pub fn parse_dg12(bytes: &[u8]) -> Result<Dg12, LdsError> {
    let dg = outer("DG12", bytes, 0x6C)?;
    let mut all = Vec::new();
    leaves("DG12", dg.value, 0, &mut all)?;
    let mut out = Dg12::default();
    for o in all {
        let v = Some(text(o.value));
        match o.tag {
            0x5F19 => out.issuing_authority = v,
            0x5F26 => out.issue_date = v,
            0x5F1A => out.other_persons = v,
            0x5F1B => out.endorsements = v,
            0x5F1C => out.tax_exit = v,
            0x5F55 => out.personalisation_time = v,
            0x5F56 => out.personalisation_device = v,
            _ => {}
        }
    }
    Ok(out)
}

/// Builders for test documents and the emulator.
pub mod build {
    use crate::tlv::encode;

    pub fn com(lds_version: &str, data_groups: &[u8]) -> Vec<u8> {
        let tags: Vec<u8> = data_groups
            .iter()
            .filter_map(|n| super::dg_tag(*n))
            .map(|t| t as u8)
            .collect();
        let body = [
            encode(0x5F01, lds_version.as_bytes()),
            encode(0x5F36, b"040000"),
            encode(0x5C, &tags),
        ]
        .concat();
        encode(0x60, &body)
    }

    pub fn dg1(mrz: &str) -> Vec<u8> {
        let compact: String = mrz.chars().filter(|c| !c.is_whitespace()).collect();
        encode(0x61, &encode(0x5F1F, compact.as_bytes()))
    }

    /// An ISO 19794-5 record around `image` (JPEG if `jpeg`, else JPEG 2000).
    pub fn face_record(image: &[u8], jpeg: bool, width: u16, height: u16) -> Vec<u8> {
        let total = 14 + 20 + 12 + image.len();
        let mut r = Vec::with_capacity(total);
        r.extend_from_slice(b"FAC\x00010\x00");
        r.extend_from_slice(&(total as u32).to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        // Facial information: block length, no feature points, gender, eyes, hair, mask,
        // expression, pose angles and their uncertainty.
        r.extend_from_slice(&((20 + 12 + image.len()) as u32).to_be_bytes());
        r.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        // Image information: full frontal, data type (0 JPEG, 1 JPEG 2000), size, colour
        // space, source, device, quality.
        r.extend_from_slice(&[1, if jpeg { 0 } else { 1 }]);
        r.extend_from_slice(&width.to_be_bytes());
        r.extend_from_slice(&height.to_be_bytes());
        r.extend_from_slice(&[1, 2, 0, 0, 0, 0]);
        r.extend_from_slice(image);
        r
    }

    pub fn dg2(record: &[u8]) -> Vec<u8> {
        let header = encode(
            0xA1,
            &[
                encode(0x80, &[1, 1]),
                encode(0x87, &[1, 1]),
                encode(0x88, &[0, 8]),
            ]
            .concat(),
        );
        let bit = encode(0x7F60, &[header, encode(0x5F2E, record)].concat());
        let group = encode(0x7F61, &[encode(0x02, &[1]), bit].concat());
        encode(0x75, &group)
    }

    /// DG14 around a SET of SecurityInfos.
    pub fn dg14(security_infos: &[u8]) -> Vec<u8> {
        encode(0x6E, security_infos)
    }

    /// DG11/DG12 from `(tag, text)` pairs, with the tag list `5C`.
    pub fn text_group(outer: u32, fields: &[(u32, &str)]) -> Vec<u8> {
        let list: Vec<u8> = fields
            .iter()
            .flat_map(|(t, _)| (*t as u16).to_be_bytes())
            .collect();
        let mut body = encode(0x5C, &list);
        for (tag, text) in fields {
            body.extend(encode(*tag, text.as_bytes()));
        }
        encode(outer, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_com_raw(version: &[u8]) -> Vec<u8> {
        crate::tlv::encode(0x60, &crate::tlv::encode(0x5F01, version))
    }

    #[test]
    fn com_of_the_worked_example() {
        let com = crate::crypto::tests::h("60145F0104303130365F36063034303030305C026175");
        let parsed = parse_com(&com).unwrap();
        assert_eq!(parsed.lds_version.as_deref(), Some("1.6"));
        // Bytes that are not text stay a value, never a panic (U+FFFD is three bytes long).
        let odd = build_com_raw(&[0xFF, 0x41]);
        assert_eq!(
            parse_com(&odd).unwrap().lds_version.as_deref(),
            Some("\u{FFFD}A")
        );
        assert_eq!(parsed.data_groups, [1, 2]);
        assert_eq!(build::com("0106", &[1, 2]), com);
    }

    #[test]
    fn dg2_face_images_of_each_kind() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
        let dg2 = build::dg2(&build::face_record(&jpeg, true, 480, 640));
        let faces = parse_dg2(&dg2).unwrap();
        assert_eq!(faces.len(), 1);
        assert_eq!(faces[0].format, ImageFormat::Jpeg);
        assert_eq!((faces[0].width, faces[0].height), (480, 640));
        assert_eq!(faces[0].bytes, jpeg);
        let j2k = [0xFF, 0x4F, 0xFF, 0x51, 0, 0];
        let faces = parse_dg2(&build::dg2(&build::face_record(&j2k, false, 1, 1))).unwrap();
        assert_eq!(faces[0].format, ImageFormat::J2k);
        // An image behind unexpected bytes is still found.
        let mut odd = vec![0u8; 40];
        odd.extend_from_slice(&[
            0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A, 9,
        ]);
        let faces = parse_dg2(&build::dg2(&odd)).unwrap();
        assert_eq!(faces[0].format, ImageFormat::Jp2);
        // Errors name the file and what.
        let e = parse_dg2(&build::dg2(&[1, 2, 3])).unwrap_err();
        assert!(e.to_string().starts_with("DG2: 7F60 #1"), "{e}");
        let e = parse_dg2(&[0x75, 0x02, 0x01, 0x00]).unwrap_err();
        assert!(e.to_string().contains("7F61"), "{e}");
    }

    #[test]
    fn dg11_and_dg12_fields() {
        let dg11 = build::text_group(
            0x6B,
            &[(0x5F0E, "张<<三"), (0x5F2B, "19900101"), (0x5F11, "广东")],
        );
        let p = parse_dg11(&dg11).unwrap();
        assert_eq!(p.full_name.as_deref(), Some("张<<三"));
        assert_eq!(p.full_birth_date.as_deref(), Some("19900101"));
        let dg12 = build::text_group(
            0x6C,
            &[(0x5F19, "公安部出入境管理局"), (0x5F26, "20200101")],
        );
        let p = parse_dg12(&dg12).unwrap();
        assert_eq!(p.issue_date.as_deref(), Some("20200101"));
        assert!(parse_dg12(&dg11).is_err());
    }
}
