use super::chip::{AaPrivateKey, internal_authenticate as chip_answer};
use super::*;
use crate::apdu::Response;
use crate::crypto::tests::h;
use crate::sm::{SecureMessaging, Tdes};

/// Doc 9303-11 Appendix F (worked example, RSA-1024, SHA-1): the representative F = `6A ‖ M1 ‖
/// H ‖ BC` of the challenge `F173589974BF40C6`. The example gives no key pair, so the
/// representative is checked as recovered.
#[test]
fn the_icao_worked_example_representative_verifies() {
    let m1 = h(
        "9D2784A67F8E7C659973EA1AEA25D95B6C8F91E5002F369F0FBDCE8A3CEC1991
                B543F1696546C5524CF23A5303CD6C98599F40B79F377B5F3A1406B3B4D8F967
                84D23AA88DB7E1032A405E69325FA91A6E86F5C71AEA978264C4A207446DAD4E
                7292E2DCDA3024B47DA8",
    );
    let hash = h("C063AA1E6D22FBD976AB0FE73D94D2D9C6D88127");
    let f = [&[0x6A][..], &m1, &hash, &[0xBC]].concat();
    assert_eq!(f.len(), 128);
    let challenge = h("F173589974BF40C6");
    assert_eq!(check_representative(&f, &challenge), Ok(HashAlg::Sha1));
    let mut other = challenge.clone();
    other[7] ^= 1;
    assert!(matches!(
        check_representative(&f, &other),
        Err(AaError::Invalid(_))
    ));
    // Total recovery (header 4A) is refused: the challenge must be M2.
    let mut total = f.clone();
    total[0] = 0x4A;
    assert!(matches!(
        check_representative(&total, &challenge),
        Err(AaError::Invalid(w)) if w.contains("total message recovery")
    ));
}

/// Representatives with the two-byte trailer, one per SHA-2 hash, from the Go reader gmrtd's
/// tests (`activeauth/active_auth_test.go`, TestDecodeF; M1 `1234…3344`, challenge
/// `0102030405060708`).
#[test]
fn two_byte_trailers_name_the_sha2_hashes() {
    let m1 = "6A1234567890ABCDEF1234567890ABCDEF11223344";
    for (digest, trailer, hash) in [
        (
            "aefc05e88f48eb88d367ba3dacb7d6a8543ec02bd315e47ddbe2045d",
            "38CC",
            HashAlg::Sha224,
        ),
        (
            "783980d44fd3a80f0e4210eb9c73ea399932062d465438f8e1ff13377de83089",
            "34CC",
            HashAlg::Sha256,
        ),
        (
            "8e0873b0baf595a777b497779981bd94dda3a81fd61cf2d526ab490f2d6cbcecc6eab5804df4e0a70169d4d0d6c07e75",
            "36CC",
            HashAlg::Sha384,
        ),
        (
            "968304e09f0c0ec86be4ade4b82d97d04283e3652b61193856c9ede1dac8962b3da9580fd77e9f9ef18a24c517d8d3b05f4eeb177e990ae1e80895c8bb28f516",
            "35CC",
            HashAlg::Sha512,
        ),
    ] {
        let f = h(&format!("{m1}{digest}{trailer}"));
        assert_eq!(check_representative(&f, &h("0102030405060708")), Ok(hash));
    }
    for bad in [
        "",
        "6B000000",
        "6A000000",
        "6A0000CC",
        "6Ab287952a913cc5b60ff74ecfc87e40e81563b1BC",
    ] {
        assert!(
            check_representative(&h(bad), &h("0102030405060708")).is_err(),
            "{bad}"
        );
    }
}

/// A real passport's AA exchange recorded by gmrtd (`activeauth/active_auth_test.go`,
/// TestDoActiveAuth): its DG15 (RSA-1792), the 3DES session keys and SSC after BAC, the
/// protected INTERNAL AUTHENTICATE and the chip's protected answer. Our secure messaging makes
/// the same command, unwraps the same signature, and the signature verifies (SHA-256, trailer
/// `34CC`).
#[test]
fn a_recorded_real_passport_exchange_verifies() {
    let dg15 = h(
        "6F8201023081FF300D06092A864886F70D01010105000381ED003081E90281E100BB8F93F4DC95E205CDA17C6927AB1E365B13065D03CD12E0FCE95D96840529453202F56CC4C13F77CD062930C8BC89A2873B257045C286E601CF3C09323A53103314902804AA10A314628CE222206A8866946A36B442041BB54AC81E6855DD1D6E16101833D65A191C20AC8B33B8A1A32920F46043F8031CF2BC17417030865FC5BE5A39DEE423BCBA3CA8177168EB23CFE01BA43EC87711B1CFFF85DB46F300DD8AE317B50D543B573E119E23AF7070D0B2FED6A3B2313A5EC02A531AAED1741F4390D1013E2A0F081EAC5DC8B0A1B2C6BDB1206F08D30E3643E1E5BDF536110203010001",
    );
    let key = parse_dg15(&dg15).unwrap();
    assert_eq!(key.describe(), "RSA-1792");
    let challenge: [u8; 8] = h("96302b0f3d7e7864").try_into().unwrap();
    let k16 = |s: &str| -> crate::crypto::Key16 { h(s).try_into().unwrap() };
    let mut sm = SecureMessaging::new(
        Box::new(Tdes {
            ks_enc: k16("b99d546108eaa251570876b6d3456dce"),
            ks_mac: k16("e3857ca24946251c151c540e13f2cd51"),
        }),
        &h("00000000000000cc"),
    );
    let cmd = sm.protect(&internal_authenticate(&challenge));
    assert_eq!(
        crate::hex(&cmd.encode()),
        "0c88000020871101ed7f8cb47a4eea086324a7f9dd7427809701008e0897f54bae49aa71f800"
    );
    let answer = Response::parse(&h("8781e901d04ca80f527df94f4a430d3d6e6cb6c2af4c6756c068a93132d147fa27833125304132981b8bd8009448e89f259eec8552b54285cef9d8f1b7fb31b9f279221c7e925f4951811f3fe2e01d76e68dbc7cde9c873c5f61862f3c5469792a72f92c8943b890436f5e9feaead9f2a361fcd7a615493d1b3519865f32ee9a125886588eb21fee0e709353d0731139fdc958d6b2127fad6947b438998b526819803f70f78614cd42f4a6619c6af95dfd2ab09bedf71e707abc39a250aee68006d522ad37d159674984a07d11c001022c853aeb7acdb059ede5721a3b9f20441bda7e242ee8df1369d25316990290008e08fd2493147866f0ed9000")).unwrap();
    let plain = sm.unprotect(&answer).unwrap();
    assert!(plain.is_ok());
    assert_eq!(
        crate::hex(&plain.data),
        "474256306840c0ab1b63c10e1c26bdfef4a0dd843920283cc4e6e70a60f2bd25dc7725f9677bc1cde66379dc28b38e8490f33afb2d10f9980c44c0bfc175d2b6684218f535c92fdd3e18db770a9ccbf91db3c7f0138e6d9e94b9bc8371761e3abed5e5e9b260279cfb238b58ae0d6a01da51c74c2a3ecd62c448bd9f20127f7384587287fa971204234e55b1a856c3e5aaaa620bb799a68fbae08ee132bb61683eba9b0b40dc1e54641cad975b16991cab50af82e3f3985afd19e7427a125f5b4b9878b12a5d2e01c7eedca3bb41c6fc05dccd818bce379d04b1f2f5d43487d3"
    );
    assert_eq!(
        verify_response(&key, &challenge, &plain.data, None).as_deref(),
        Ok("RSA-1792 ISO/IEC 9796-2 scheme 1 SHA-256")
    );
    let mut wrong = challenge;
    wrong[0] ^= 0x80;
    assert!(matches!(
        verify_response(&key, &wrong, &plain.data, None),
        Err(AaError::Invalid(_))
    ));
    let mut forged = plain.data.clone();
    forged[10] ^= 1;
    assert!(matches!(
        verify_response(&key, &challenge, &forged, None),
        Err(AaError::Invalid(_))
    ));
}

fn rsa_key(der: &[u8], hash: HashAlg) -> AaPrivateKey {
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    AaPrivateKey::Rsa(
        Box::new(rsa::PrivateKey::from_pkcs1_der(der).unwrap()),
        hash,
    )
}

fn dg15_of(key: &AaPrivateKey) -> Vec<u8> {
    tlv::encode(0x6F, &key.public_spki())
}

/// The emulator's chip side against the terminal side: RSA-1024/2048 with SHA-1 (`BC`) and
/// SHA-256 (`34CC`), ECDSA P-256; a clone's key fails; a truncated or empty answer is malformed.
#[test]
fn the_chip_side_signs_what_the_terminal_side_verifies() {
    let keys = [
        (
            rsa_key(
                include_bytes!("../sim/fixtures/aa-rsa1024.der"),
                HashAlg::Sha1,
            ),
            "RSA-1024 ISO/IEC 9796-2 scheme 1 SHA-1",
        ),
        (
            rsa_key(
                include_bytes!("../sim/fixtures/aa-rsa2048.der"),
                HashAlg::Sha256,
            ),
            "RSA-2048 ISO/IEC 9796-2 scheme 1 SHA-256",
        ),
        (
            AaPrivateKey::random_p256(HashAlg::Sha256),
            "ECDSA P-256 SHA-256",
        ),
    ];
    let clone = rsa_key(
        include_bytes!("../sim/fixtures/aa-rsa2048-clone.der"),
        HashAlg::Sha256,
    );
    for (key, what) in &keys {
        let public = parse_dg15(&dg15_of(key)).unwrap();
        let challenge = crate::crypto::random::<8>();
        let answer = chip_answer(key, &internal_authenticate(&challenge)).unwrap();
        let hash = matches!(key, AaPrivateKey::P256(..)).then_some(HashAlg::Sha256);
        assert_eq!(
            verify_response(&public, &challenge, &answer, hash).as_deref(),
            Ok(*what)
        );
        let clone_answer = match key {
            AaPrivateKey::P256(..) => AaPrivateKey::random_p256(HashAlg::Sha256)
                .sign(&challenge)
                .unwrap(),
            _ if answer.len() == 256 => clone.sign(&challenge).unwrap(),
            _ => rsa_key(
                include_bytes!("../sim/fixtures/aa-rsa1024-clone.der"),
                HashAlg::Sha1,
            )
            .sign(&challenge)
            .unwrap(),
        };
        // Invalid, or (RSA) not even below the genuine modulus: refused either way.
        assert!(
            matches!(
                verify_response(&public, &challenge, &clone_answer, hash),
                Err(AaError::Invalid(_) | AaError::Malformed(_))
            ),
            "{what}"
        );
        assert!(verify_response(&public, &challenge, &answer[..answer.len() - 1], hash).is_err());
        assert!(verify_response(&public, &challenge, &[], hash).is_err());
    }
    // ECDSA without DG14's hash is not decided.
    let p256 = &keys[2].0;
    let public = parse_dg15(&dg15_of(p256)).unwrap();
    assert!(matches!(
        verify_response(&public, &[0; 8], &p256.sign(&[0; 8]).unwrap(), None),
        Err(AaError::Unsupported(_))
    ));
    // The chip wants exactly 8 bytes.
    assert_eq!(
        chip_answer(p256, &Command::new(0, 0x88, 0, 0).with_data(vec![0; 7])),
        Err(crate::apdu::SW_WRONG_LENGTH)
    );
}

#[test]
fn dg15_parsing_refuses_what_is_not_a_key() {
    for bad in ["", "6F00", "6F023000", "6E03300100", "6F0530033001FF"] {
        assert!(
            matches!(parse_dg15(&h(bad)), Err(AaError::Malformed(_))),
            "{bad}"
        );
    }
    // An EC key on a curve countersign does not implement (P-521's OID) is unsupported.
    let spki = tlv::encode(
        0x30,
        &[
            tlv::encode(
                0x30,
                &[
                    tlv::encode(0x06, oid::EC_PUBLIC_KEY),
                    tlv::encode(0x06, &[0x2B, 0x81, 0x04, 0x00, 0x23]),
                ]
                .concat(),
            ),
            tlv::encode(0x03, &[0, 4, 1, 2]),
        ]
        .concat(),
    );
    assert!(matches!(
        parse_dg15(&tlv::encode(0x6F, &spki)),
        Err(AaError::Unsupported(w)) if w.contains("P-521")
    ));
}

#[test]
fn the_challenge_depends_on_every_input_and_on_nothing_else() {
    let binding = Binding {
        station: "counter-01".into(),
        bound: Some((41, "sha256:00ff".into())),
        read_at: "2026-03-01T08:00:00.123Z".into(),
    };
    let c = challenge(&binding);
    assert_eq!(c, challenge(&binding.clone()));
    let mut other = binding.clone();
    other.station = "counter-02".into();
    assert_ne!(challenge(&other), c);
    let mut other = binding.clone();
    other.bound = Some((42, "sha256:00ff".into()));
    assert_ne!(challenge(&other), c);
    let mut other = binding.clone();
    other.bound = None;
    assert_ne!(challenge(&other), c);
    let mut other = binding.clone();
    other.read_at = "2026-03-01T08:00:00.124Z".into();
    assert_ne!(challenge(&other), c);
    // Length prefixes: moving a character from one field to the next changes the challenge.
    let a = Binding {
        station: "ab".into(),
        bound: None,
        read_at: "c".into(),
    };
    let b = Binding {
        station: "a".into(),
        bound: None,
        read_at: "bc".into(),
    };
    assert_ne!(challenge(&a), challenge(&b));
    // The value is fixed by the documented encoding (docs/record-format.md).
    assert_eq!(
        crate::hex(&challenge(&binding)),
        crate::hex(&{
            let mut sha = sha2::Sha256::new();
            for f in [
                CHALLENGE_CONTEXT,
                b"counter-01",
                b"41",
                b"sha256:00ff",
                b"2026-03-01T08:00:00.123Z",
            ] {
                sha.update((f.len() as u32).to_be_bytes());
                sha.update(f);
            }
            sha.finalize()[..8].to_vec()
        })
    );
}

#[test]
fn ecdsa_hashes_come_from_both_oid_families() {
    assert_eq!(
        ecdsa_hash(&ecdsa_plain_oid(HashAlg::Sha256)),
        Some(HashAlg::Sha256)
    );
    assert_eq!(
        ecdsa_hash(&ecdsa_plain_oid(HashAlg::Sha1)),
        Some(HashAlg::Sha1)
    );
    assert_eq!(ecdsa_hash(oid::ECDSA_SHA384), Some(HashAlg::Sha384));
    assert_eq!(
        ecdsa_hash(&[0x04, 0x00, 0x7F, 0x00, 0x07, 0x01, 0x01, 0x04, 0x01, 9]),
        None
    );
    assert_eq!(ecdsa_hash(&[]), None);
}
