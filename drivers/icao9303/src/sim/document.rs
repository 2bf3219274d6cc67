//! Test documents for the emulator: a TD3 passport (face as JPEG, JP2 or raw JPEG 2000
//! codestream) or a Chinese exit-entry permit (CS, 3×30 MRZ), with DG11, DG12, DG14 (chip
//! authentication, ActiveAuthenticationInfo), DG15 (Active Authentication) and an EF.SOD signed
//! by a [`TestPki`]; faults: a tampered data group, a broken EF.SOD signature, PACE offered or
//! PACE only, cloned chips (chip authentication, Active Authentication, a clone bringing its own
//! DG15). All names and numbers are synthetic.

use crate::aa::chip::AaPrivateKey;
use crate::cipher::Cipher;
use crate::ec::Curve;
use crate::lds::{self, LdsFile};
use crate::mrz::{self, MrzKey};
use crate::pace::PaceParams;
use crate::security_infos::{self, KeyAgreement, Mapping, PaceProtocol};
use crate::sod::HashAlg;
use crate::tlv;

use super::pki::TestPki;

/// Which document to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// TD3 passport, JPEG face.
    PassportJpeg,
    /// TD3 passport, JPEG 2000 face in a JP2 file.
    PassportJp2,
    /// TD3 passport, raw JPEG 2000 codestream face (as Chinese passports).
    PassportJ2k,
    /// 往来港澳通行证 electronic card: `CS`, 3×30 MRZ in the permits' order.
    ExitEntryPermit,
}

impl DocumentKind {
    pub const ALL: [(&'static str, DocumentKind); 4] = [
        ("passport-jpeg", DocumentKind::PassportJpeg),
        ("passport-jp2", DocumentKind::PassportJp2),
        ("passport-j2k", DocumentKind::PassportJ2k),
        ("exit-entry-permit", DocumentKind::ExitEntryPermit),
    ];

    pub fn from_name(name: &str) -> Option<DocumentKind> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }
}

/// How to make it.
#[derive(Debug, Clone)]
pub struct DocumentSpec {
    pub kind: DocumentKind,
    /// Pad the JPEG face with a comment segment up to this many bytes (0: as encoded).
    pub face_bytes: usize,
    /// Change one byte of this data group after EF.SOD was signed.
    pub tamper_dg: Option<u8>,
    /// EF.CardAccess offers PACE (the chip still does BAC).
    pub pace_offered: bool,
    /// The chip refuses BAC (6A88) and offers PACE only.
    pub pace_only: bool,
    /// PACE with the chip authentication mapping (PACE-CAM; AES, needs `chip_auth`: the chip
    /// answers with DG14's key, a clone's with its own) instead of the generic mapping.
    pub pace_cam: bool,
    /// PACE's curve and cipher (ECDH generic mapping) when PACE is offered.
    pub pace_curve: Curve,
    pub pace_cipher: Cipher,
    /// The card access number printed on the data page (a PACE password besides the MRZ).
    pub can: String,
    /// DG14 with a chip authentication key, and the chip side of chip authentication.
    pub chip_auth: bool,
    /// Chip authentication's curve and cipher (ECDH, version 1).
    pub ca_curve: Curve,
    pub ca_cipher: Cipher,
    /// DG14's key id (none by default, as most documents have a single key).
    pub ca_key_id: Option<u32>,
    /// A clone: DG14 (and EF.SOD) as the genuine document's, but the chip does not hold the
    /// private key of DG14's public key, so chip authentication fails.
    pub cloned_chip: bool,
    /// DG15 and Active Authentication with this key.
    pub active_auth: Option<AaKeyKind>,
    /// The hash of RSA Active Authentication (SHA-1: trailer `BC`); ECDSA uses SHA-256.
    pub aa_hash: HashAlg,
    /// A clone for Active Authentication: DG15 as the genuine document's, but the chip signs with
    /// a key of its own.
    pub aa_cloned: bool,
    /// A clone that brings its own DG15 (its own key, which it holds): EF.SOD's hash list is
    /// rewritten for it, so EF.SOD's signature no longer verifies.
    pub aa_own_dg15: bool,
    /// EF.SOD's signature is broken (one byte changed) although every hash matches.
    pub break_sod_signature: bool,
}

/// The Active Authentication keys the emulator offers (fixed RSA test keys, made for this
/// project with OpenSSL, and a fresh P-256 key per document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AaKeyKind {
    Rsa1024,
    Rsa2048,
    EcdsaP256,
}

impl AaKeyKind {
    pub const ALL: [(&'static str, AaKeyKind); 3] = [
        ("RSA-1024", AaKeyKind::Rsa1024),
        ("RSA-2048", AaKeyKind::Rsa2048),
        ("ECDSA-P256", AaKeyKind::EcdsaP256),
    ];

    pub fn from_name(name: &str) -> Option<AaKeyKind> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    /// The genuine key (`clone`: another key of the same kind).
    pub fn key(self, hash: HashAlg, clone: bool) -> AaPrivateKey {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        let der: &[u8] = match (self, clone) {
            (AaKeyKind::EcdsaP256, _) => return AaPrivateKey::random_p256(HashAlg::Sha256),
            (AaKeyKind::Rsa1024, false) => include_bytes!("fixtures/aa-rsa1024.der"),
            (AaKeyKind::Rsa1024, true) => include_bytes!("fixtures/aa-rsa1024-clone.der"),
            (AaKeyKind::Rsa2048, false) => include_bytes!("fixtures/aa-rsa2048.der"),
            (AaKeyKind::Rsa2048, true) => include_bytes!("fixtures/aa-rsa2048-clone.der"),
        };
        match rsa::PrivateKey::from_pkcs1_der(der) {
            Ok(key) => AaPrivateKey::Rsa(Box::new(key), hash),
            // The fixtures are PKCS#1 DER; a P-256 key keeps the emulator usable if one is not.
            Err(_) => AaPrivateKey::random_p256(HashAlg::Sha256),
        }
    }
}

impl DocumentSpec {
    pub fn new(kind: DocumentKind) -> Self {
        DocumentSpec {
            kind,
            face_bytes: 0,
            tamper_dg: None,
            pace_offered: false,
            pace_only: false,
            pace_cam: false,
            pace_curve: Curve::NistP256,
            pace_cipher: Cipher::Aes128,
            can: "123456".into(),
            chip_auth: true,
            ca_curve: Curve::NistP256,
            ca_cipher: Cipher::Aes128,
            ca_key_id: None,
            cloned_chip: false,
            active_auth: None,
            aa_hash: HashAlg::Sha1,
            aa_cloned: false,
            aa_own_dg15: false,
            break_sod_signature: false,
        }
    }

    /// A Chinese passport as the reference describes it: TD3, raw JPEG 2000 face, BAC only, RSA
    /// Active Authentication (DG15), no DG14; a chip strict about Le.
    pub fn chinese_passport() -> Self {
        DocumentSpec {
            chip_auth: false,
            active_auth: Some(AaKeyKind::Rsa2048),
            ..DocumentSpec::new(DocumentKind::PassportJ2k)
        }
    }

    /// A Hong Kong SAR passport: PACE, ECDSA Active Authentication (DG14 names its hash), no
    /// chip authentication key.
    pub fn hong_kong_passport() -> Self {
        DocumentSpec {
            pace_offered: true,
            chip_auth: false,
            active_auth: Some(AaKeyKind::EcdsaP256),
            ..DocumentSpec::new(DocumentKind::PassportJpeg)
        }
    }
}

/// The chip authentication key a document's chip holds.
#[derive(Clone)]
pub struct ChipAuthKey {
    pub curve: Curve,
    pub cipher: Cipher,
    pub key_id: Option<u32>,
    /// The private key in the chip (a clone's does not match DG14's public key).
    pub private: Vec<u8>,
}

impl ChipAuthKey {
    /// `ECDH P-256 AES-128`, as the reader reports it.
    pub fn describe(&self) -> String {
        format!("ECDH {} {}", self.curve.name(), self.cipher.name())
    }
}

/// A document the emulator serves.
#[derive(Clone)]
pub struct TestDocument {
    /// The MRZ as printed (lines separated by `\n`).
    pub mrz: String,
    pub key: MrzKey,
    files: Vec<(u16, Vec<u8>)>,
    /// EF.CardAccess, when the chip has one.
    pub card_access: Option<Vec<u8>>,
    /// The PACE the chip runs (the PACEInfo of EF.CardAccess), when it offers PACE.
    pub pace: Option<PaceParams>,
    pub can: String,
    pub pace_only: bool,
    /// Chip authentication, when DG14 offers it.
    pub chip_auth: Option<ChipAuthKey>,
    /// The key INTERNAL AUTHENTICATE signs with (a clone's is not DG15's).
    pub active_auth: Option<AaPrivateKey>,
}

/// A synthetic face: an oval on a plain background, `width`×`height`, RGB.
pub fn synthetic_face(width: u32, height: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity((width * height * 3) as usize);
    let (w, h) = (width as f32, height as f32);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32, y as f32);
            let dx = (fx - w / 2.0) / (w * 0.32);
            let dy = (fy - h * 0.45) / (h * 0.36);
            let eye = [0.38, 0.62]
                .iter()
                .any(|ex| (fx - w * ex).powi(2) + (fy - h * 0.38).powi(2) < (w * 0.04).powi(2));
            let c = if eye {
                [60, 40, 30]
            } else if dx * dx + dy * dy < 1.0 {
                [(225.0 - 30.0 * dy) as u8, (190.0 - 20.0 * dy) as u8, 160]
            } else {
                [(200.0 + 40.0 * fy / h) as u8, 210, 230]
            };
            px.extend_from_slice(&c);
        }
    }
    px
}

/// A JPEG face, padded with a COM segment to at least `min_bytes`.
fn jpeg_face(min_bytes: usize) -> Vec<u8> {
    let (w, h) = (240, 320);
    let jpeg =
        crate::face::encode_jpeg(&synthetic_face(w, h), w, h, image::ExtendedColorType::Rgb8)
            .unwrap_or_default();
    pad_jpeg(jpeg, min_bytes)
}

fn pad_jpeg(jpeg: Vec<u8>, min_bytes: usize) -> Vec<u8> {
    if jpeg.len() >= min_bytes || jpeg.len() < 2 {
        return jpeg;
    }
    let mut out = jpeg[..2].to_vec();
    let mut missing = min_bytes - jpeg.len();
    while missing > 0 {
        let data = missing.saturating_sub(4).min(65533);
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&((data + 2) as u16).to_be_bytes());
        out.extend(std::iter::repeat_n(b'.', data));
        missing = missing.saturating_sub(data + 4);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

impl TestDocument {
    pub fn generate(spec: &DocumentSpec, pki: &TestPki) -> TestDocument {
        let passport = mrz::build::Fields {
            code: "P",
            state: "UTO",
            number: "E12345678",
            nationality: "UTO",
            birth: "850315",
            sex: "F",
            expiry: "330101",
            surname: "TESTPERSON",
            given: "ANNA MARIA",
            optional: "",
        };
        let (mrz_text, face, jpeg, dg11, dg12): (String, Vec<u8>, bool, Vec<u8>, Vec<u8>) =
            match spec.kind {
                DocumentKind::ExitEntryPermit => {
                    let fields = mrz::build::Fields {
                        code: "CS",
                        state: "CHN",
                        number: "C01234567",
                        nationality: "CHN",
                        birth: "900101",
                        sex: "M",
                        expiry: "300101",
                        surname: "CESHI",
                        given: "YI",
                        optional: "",
                    };
                    (
                        mrz::build::china_exit_entry(&fields, "KBQLKBQLKBQL"),
                        jpeg_face(spec.face_bytes),
                        true,
                        lds::build::text_group(
                            0x6B,
                            &[(0x5F0E, "测试<<乙"), (0x5F2B, "19900101"), (0x5F11, "广东")],
                        ),
                        lds::build::text_group(
                            0x6C,
                            &[(0x5F19, "公安部出入境管理局"), (0x5F26, "20200101")],
                        ),
                    )
                }
                kind => {
                    let (face, jpeg) = match kind {
                        DocumentKind::PassportJp2 => {
                            (include_bytes!("fixtures/face.jp2").to_vec(), false)
                        }
                        DocumentKind::PassportJ2k => {
                            (include_bytes!("fixtures/face.j2k").to_vec(), false)
                        }
                        _ => (jpeg_face(spec.face_bytes), true),
                    };
                    (
                        mrz::build::td3(&passport),
                        face,
                        jpeg,
                        lds::build::text_group(
                            0x6B,
                            &[
                                (0x5F0E, "TESTPERSON<<ANNA<MARIA"),
                                (0x5F2B, "19850315"),
                                (0x5F11, "UTOPIA CITY"),
                            ],
                        ),
                        lds::build::text_group(
                            0x6C,
                            &[(0x5F19, "UTOPIA PASSPORT OFFICE"), (0x5F26, "20230102")],
                        ),
                    )
                }
            };
        let key = MrzKey::from_mrz_text(&mrz_text).unwrap_or_else(|_| MrzKey {
            document_number: String::new(),
            birth_date: String::new(),
            expiry_date: String::new(),
        });
        let (w, h) = if jpeg { (240, 320) } else { (150, 200) };
        let mut dgs: Vec<(u8, Vec<u8>)> = vec![
            (1, lds::build::dg1(&mrz_text)),
            (
                2,
                lds::build::dg2(&lds::build::face_record(&face, jpeg, w, h)),
            ),
            (11, dg11),
            (12, dg12),
        ];
        let mut dg14_infos = Vec::new();
        let chip_auth = spec.chip_auth.then(|| {
            let (curve, cipher) = (spec.ca_curve, spec.ca_cipher);
            let genuine = curve.random_scalar();
            let public = curve
                .mul(&genuine, &curve.generator(), "G")
                .unwrap_or_default();
            dg14_infos.extend(security_infos::build::chip_authentication_with_key_id(
                cipher,
                curve,
                &public,
                spec.ca_key_id,
            ));
            ChipAuthKey {
                curve,
                cipher,
                key_id: spec.ca_key_id,
                // A clone has the files but not the key: it makes up one of its own.
                private: if spec.cloned_chip {
                    curve.random_scalar()
                } else {
                    genuine
                },
            }
        });
        let active_auth = spec.active_auth.map(|kind| {
            let genuine = kind.key(spec.aa_hash, false);
            if kind == AaKeyKind::EcdsaP256 {
                dg14_infos.push(security_infos::build::active_authentication_info(
                    &crate::aa::ecdsa_plain_oid(HashAlg::Sha256),
                ));
            }
            dgs.push((15, tlv::encode(0x6F, &genuine.public_spki())));
            if spec.aa_cloned || spec.aa_own_dg15 {
                kind.key(spec.aa_hash, true)
            } else {
                genuine
            }
        });
        if !dg14_infos.is_empty() {
            dgs.push((
                14,
                lds::build::dg14(&security_infos::build::set(&dg14_infos)),
            ));
        }
        dgs.sort_by_key(|(n, _)| *n);
        let refs: Vec<(u8, &[u8])> = dgs.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let mut sod = pki.sign_sod(HashAlg::Sha256, &refs);
        if spec.aa_own_dg15
            && let (Some(key), Some(dg15)) = (&active_auth, dgs.iter_mut().find(|(n, _)| *n == 15))
        {
            // The clone's own DG15 and a hash list rewritten for it, under the genuine signature.
            let old_hash = HashAlg::Sha256.digest(dg15.1.as_slice());
            dg15.1 = tlv::encode(0x6F, &key.public_spki());
            let new_hash = HashAlg::Sha256.digest(dg15.1.as_slice());
            if let Some(at) = sod.windows(old_hash.len()).position(|w| w == old_hash) {
                sod[at..at + new_hash.len()].copy_from_slice(&new_hash);
            }
        }
        if spec.break_sod_signature {
            // The signature is the last element of EF.SOD (DER ECDSA): a byte inside it.
            let at = sod.len().saturating_sub(8);
            if let Some(b) = sod.get_mut(at) {
                *b ^= 0x01;
            }
        }
        if let Some((_, bytes)) = spec
            .tamper_dg
            .and_then(|n| dgs.iter_mut().find(|(d, _)| *d == n))
        {
            let at = bytes.len().saturating_sub(3);
            if let Some(b) = bytes.get_mut(at) {
                *b ^= 0x01;
            }
        }
        let listed: Vec<u8> = dgs.iter().map(|(n, _)| *n).collect();
        let mut files = vec![
            (LdsFile::Com.fid(), lds::build::com("0107", &listed)),
            (LdsFile::Sod.fid(), sod),
        ];
        files.extend(dgs.into_iter().map(|(n, b)| (LdsFile::Dg(n).fid(), b)));
        let pace = (spec.pace_offered || spec.pace_only || spec.pace_cam).then(|| {
            PaceParams::new(
                PaceProtocol {
                    agreement: KeyAgreement::Ecdh,
                    mapping: if spec.pace_cam {
                        Mapping::ChipAuthentication
                    } else {
                        Mapping::Generic
                    },
                    cipher: spec.pace_cipher,
                },
                spec.pace_curve,
            )
        });
        TestDocument {
            mrz: mrz_text,
            key,
            files,
            card_access: pace.as_ref().map(|p| {
                security_infos::build::set(&[security_infos::build::pace_info(p.protocol, p.curve)])
            }),
            pace,
            can: spec.can.clone(),
            pace_only: spec.pace_only,
            chip_auth,
            active_auth,
        }
    }

    /// A file under the eMRTD application by FID.
    pub fn file(&self, fid: u16) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(f, _)| *f == fid)
            .map(|(_, b)| b.as_slice())
    }

    /// A file by short file identifier (the low 5 bits of the FID).
    pub fn file_by_sfi(&self, sfi: u8) -> Option<(u16, &[u8])> {
        self.files
            .iter()
            .find(|(f, _)| (*f & 0x1F) as u8 == sfi)
            .map(|(f, b)| (*f, b.as_slice()))
    }

    /// Replaces (or adds) a file: large-file tests.
    pub fn set_file(&mut self, fid: u16, bytes: Vec<u8>) {
        self.files.retain(|(f, _)| *f != fid);
        self.files.push((fid, bytes));
    }
}
