//! Chip authentication against sessions recorded with real passports, and the choice of what to
//! run from DG14.
//!
//! No published chip authentication worked example was found (Doc 9303-11's appendices cover BAC
//! and PACE; TR-03110 has none). The transcripts here were recorded by the gmrtd project
//! (github.com/gmrtd/gmrtd, `chipauth/chip_auth_test.go`) with real Austrian, German and French
//! passports: DG14, the secure messaging keys and counter
//! before chip authentication, the terminal's ephemeral private key, and every protected command
//! and answer byte for byte, up to a SELECT of DG14 under the new keys. Replaying them, this
//! terminal must send exactly the recorded commands (so it encodes the keys, OIDs and key
//! references as those chips accepted them), accept the chips' answers, and derive the keys the
//! chips then used (the last command and answer are under them).

use super::*;
use crate::apdu::Response;
use crate::crypto::tests::h;
use crate::security_infos;

/// One recorded session: DG14, secure messaging before (cipher, KSenc, KSmac, SSC), the
/// ephemeral key, and the protected exchanges (CA's, then SELECT DG14 under the new keys).
struct Recording {
    dg14: &'static str,
    cipher: Cipher,
    ks_enc: &'static str,
    ks_mac: &'static str,
    ssc: &'static str,
    sk_eph: &'static str,
    pk_eph_x: &'static str,
    exchanges: &'static [(&'static str, &'static str)],
    /// The keys the recording says the session continued with.
    new_keys: (&'static str, &'static str),
}

const BP256_EXPLICIT_KEY_PREFIX: &str = "30820142060904007F000702020102308201333081EC06072A8648CE3D02013081E0020101302C06072A8648CE3D0101022100A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377304404207D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9042026DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B60441048BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997022100A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7020101034200";

/// Austrian passport: id-CA-ECDH-AES-CBC-CMAC-128, brainpoolP256r1 as explicit parameters, no
/// key id; PACE's AES-128 session before.
const AT: Recording = Recording {
    dg14: "6E82017E3182017A300D060804007F0007020202020101300F060A04007F000702020302020201013012060A04007F0007020204020202010202010D30820142060904007F000702020102308201333081EC06072A8648CE3D02013081E0020101302C06072A8648CE3D0101022100A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377304404207D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9042026DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B60441048BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997022100A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7020101034200041983917269AC877C0B61544C2C022000D2A5ABA723E2D80141E648B40911DC3459761F27480E4B57181A53D8FE1190EA86C939AC14363178CAFFC621F0F905C3",
    cipher: Cipher::Aes128,
    ks_enc: "524170DE3419B7AF2F23E45AD6EF9595",
    ks_mac: "97893F5FDC29A5C13A924FE7D8ED44FD",
    ssc: "000000000000000000000000000000F0",
    sk_eph: "80EBAFC8A51BECD4D90BB640EE38C9FD5C12748D28AAA37096B98C4533C4F5F5",
    pk_eph_x: "4827C781BE1AC7A00B351214FD783AC76D99E831A6316C8FD6DE7BD96CFA31DA",
    exchanges: &[
        (
            "0C2241A41D8711015D8F69B1EA365CCE4304970DB12421F38E085340D338128085E700",
            "990290008E083F5136E82A6C34779000",
        ),
        (
            "0C860000608751019E18F1BA79D805379752BB560EB70AAC3CE3BC5AFE2FDD4AEB325CA8B578B4A93B9F66A5DF40005F8E878535251D33DD974AAF77FB858773E5799FA9DC1034E89B1150EC7F0BB3DB4BF37A1B9EA4458A9701008E089D204D950C0B95DB00",
            "8711010B0A5DFFC7432DE4DEB604291377A05B990290008E08B3384A1F5D1579739000",
        ),
        (
            "0CA4020C1D8711011B2EE500E84960DF7F37AFE7ADFF53838E084500F3B43E192A5700",
            "990290008E0803C4B125B4218CEF9000",
        ),
    ],
    new_keys: (
        "C8E27260EFD3F318D18C080CBF11C7E6",
        "A942190365204A21409EB28B52BF9160",
    ),
};

/// German passport: AES-128, brainpoolP256r1 explicit, key id 195 in both entries (sent as
/// `84 01 C3`).
const DE: Recording = Recording {
    dg14: "6E82019A31820196300D060804007F00070202020201013012060A04007F0007020204020202010202010D3012060A04007F0007020204060202010202010D3013060A04007F00070202030202020101020200C330820146060904007F000702020102308201333081EC06072A8648CE3D02013081E0020101302C06072A8648CE3D0101022100A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377304404207D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9042026DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B60441048BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997022100A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7020101034200047036BC5D0BCF31913B59103BB6F2C0C98C99EF4C19B9517340B76BFE4EE2194C76C3F3314E021D4B092DB5A32AB7D6E297F2FBEAE45AA28DEFC4DA750FEAD54E020200C3",
    cipher: Cipher::Aes128,
    ks_enc: "CC86415F2ED7E8FD663B754265695AE1",
    ks_mac: "581E84B8EE06C4D3EEE30461498D7FB3",
    ssc: "000000000000000000000000000000BA",
    sk_eph: "84A5145885678EE9307C28C52736896267511203B7B8009C5FE27ABCBAECDCAA",
    pk_eph_x: "897FA47C895D35949A8DB8F776A62D775BDF764A1AA1BDC2D8FC96CD5C2E80E3",
    exchanges: &[
        (
            "0C2241A41D871101980953D37F67558690045D78A853B18A8E08929767A2CEF172E200",
            "990290008E08FC873EBB62219C8A9000",
        ),
        (
            "0C8600006087510161912C367A6322D24AA1D4522DC47A7345369257672DF1D1163D506EB6489395D8083FAD393A394297CE8703C42F22C864C1F4C8E70EE1CF9B497ACF6579190D90F36CF9E16FE2149FF57247285D9E1E9701008E08A1D7A16EFBFD932C00",
            "87110123E7159AC9B0EF92CE1F6755B89697E3990290008E088972F1595E1508C29000",
        ),
        (
            "0CA4020C1D871101FAD37EADBCDE7E6A0833035A9FFF5B708E0836560BBCE1FECD5F00",
            "990290008E0829D0E1EBBB61BE7A9000",
        ),
    ],
    new_keys: (
        "AF0EEDB52E87B945FC5503B1C6875C1C",
        "CEB85BEDCECFF1DD1E25DFB672C4A5BF",
    ),
};

/// French passport: no ChipAuthenticationInfo (3DES assumed, MSE:Set KAT), NIST P-256 as
/// explicit parameters; PACE's AES-256 session before, then 3DES.
const FR: Recording = Recording {
    dg14: "6E82015E3182015A30820142060904007F000702020102308201333081EC06072A8648CE3D02013081E0020101302C06072A8648CE3D0101022100FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF30440420FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC04205AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B0441046B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C2964FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5022100FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551020101034200048367FC170D90AD53A28C6526A9C7EC4F5C59C4F7F5D992583F951A1654B4D1D6332163A33D82CBF245154887A8812ED9A55C15AD9D5C5C463851875BBA9AEABD3012060A04007F0007020204020402010202010C",
    cipher: Cipher::Aes256,
    ks_enc: "17da5d46e356f5b31c3d65b1369ef531ca811effc76967d2b62335e1ad9fe5cb",
    ks_mac: "5cb99a25e6081581fac80c8da621087939b6bde273f2f7c65693b3a0ea3051ed",
    ssc: "000000000000000000000000000000c6",
    sk_eph: "d9c3b06a4dcb735351429403fcb56db520dc882512d775971f724d6112f96586",
    pk_eph_x: "334f809c8842a4c9316c19e52a0d6ea0285996c40ff6db303cef72099198c8ad",
    exchanges: &[
        (
            "0c2241a65d8751013ae386873df68bd7e9f8d7ab2e696ced29eeb8da78d502645b5e97d566361341e2eaa56318f6d84bf0bc44f7808afaf14798d16048aab03545f017f557d2cce9dee724f099e3d643abd0fb03e567d9b18e08f2d238dede5abbf100",
            "990290008e089666ac14d11e8c2c9000",
        ),
        (
            "0ca4020c15870901db66e918fe3525f98e08d870008cea2ba80000",
            "990290008e08420dea0a913418ae9000",
        ),
    ],
    new_keys: (
        "8ae910a12991fbfe5e37c2c726a2df29",
        "1adac8970843d9bf8570737a04a8d50d",
    ),
};

fn params_of(dg14: &str) -> CaParams {
    let infos = security_infos::parse(&h(dg14)).unwrap();
    match choose(&infos) {
        CaOffer::Supported(p) => p,
        other => panic!("{other:?}"),
    }
}

/// Replays a recording: every command this terminal sends must be the recorded one.
fn replay(r: &Recording) -> CaParams {
    let params = params_of(r.dg14);
    let mut old = SecureMessaging::new(r.cipher.sm(&h(r.ks_enc), &h(r.ks_mac)), &h(r.ssc));
    let (ca_exchanges, proof) = r.exchanges.split_at(r.exchanges.len() - 1);
    let mut sent = 0;
    let mut transmit = |cmd: &Command| -> Result<Response, String> {
        let (wire, answer) = ca_exchanges
            .get(sent)
            .ok_or_else(|| format!("command {sent} not recorded: {cmd}"))?;
        sent += 1;
        assert_eq!(old.protect(cmd).encode(), h(wire), "command {sent}: {cmd}");
        old.unprotect(&Response::parse(&h(answer)).unwrap())
            .map_err(|e| e.to_string())
    };
    let terminal = CaTerminal {
        sk_eph: Some(h(r.sk_eph)),
    };
    let mut new = authenticate(&mut transmit, &params, &terminal)
        .unwrap()
        .unwrap();
    assert_eq!(sent, ca_exchanges.len());
    // Under the new keys, from SSC 0: SELECT DG14 as recorded, and the chip's answer verifies.
    let select = Command::new(0x00, 0xA4, 0x02, 0x0C).with_data(vec![0x01, 0x0E]);
    let (wire, answer) = proof[0];
    assert_eq!(new.protect(&select).encode(), h(wire));
    assert_eq!(
        new.unprotect(&Response::parse(&h(answer)).unwrap()),
        Ok(Response::status(0x9000))
    );
    // The keys the recording names give the same command.
    let new_cipher = params.cipher;
    let mut expected = SecureMessaging::new(
        new_cipher.sm(&h(r.new_keys.0), &h(r.new_keys.1)),
        &vec![0; new_cipher.block_size()],
    );
    assert_eq!(expected.protect(&select).encode(), h(wire));
    // The fixed ephemeral key is the recorded one.
    let pk = params
        .curve
        .mul(&h(r.sk_eph), &params.curve.generator(), "G")
        .unwrap();
    assert_eq!(pk[1..1 + params.curve.field_len()], h(r.pk_eph_x)[..]);
    params
}

#[test]
fn recorded_austrian_passport_aes_128_brainpool_explicit_parameters() {
    let p = replay(&AT);
    assert_eq!(
        (p.cipher, p.curve, p.key_id, p.inferred),
        (Cipher::Aes128, Curve::BrainpoolP256r1, None, false)
    );
    assert_eq!(p.describe(), "ECDH brainpoolP256r1 AES-128");
}

#[test]
fn recorded_german_passport_with_a_key_id() {
    let p = replay(&DE);
    assert_eq!(p.key_id, Some(195));
    assert_eq!(key_reference(195), h("8401C3"));
    assert_eq!(p.describe(), "ECDH brainpoolP256r1 AES-128, key 195");
}

#[test]
fn recorded_french_passport_3des_inferred_with_mse_set_kat() {
    let p = replay(&FR);
    assert_eq!(
        (p.cipher, p.curve, p.inferred),
        (Cipher::Tdes, Curve::NistP256, true)
    );
    assert_eq!(p.oid, h("04007F00070202030201"));
    assert!(p.describe().contains("3DES assumed"), "{}", p.describe());
}

#[test]
fn refusals_and_bad_keys_are_reported_not_panicked() {
    let params = params_of(AT.dg14);
    // The chip refuses MSE:Set AT.
    let mut refuse = |_: &Command| -> Result<Response, ()> { Ok(Response::status(0x6A80)) };
    let e = authenticate(&mut refuse, &params, &CaTerminal::default())
        .unwrap()
        .unwrap_err();
    assert_eq!(
        e,
        CaError::Refused {
            step: "MSE:Set AT (chip authentication)",
            sw: 0x6A80
        }
    );
    assert!(e.to_string().contains("6A80 (incorrect data)"), "{e}");
    // GENERAL AUTHENTICATE answers something that is not dynamic authentication data.
    let mut junk = |cmd: &Command| -> Result<Response, ()> {
        Ok(match cmd.ins {
            0x86 => Response::new(vec![0x01, 0x02, 0x03], 0x9000),
            _ => Response::status(0x9000),
        })
    };
    let e = authenticate(&mut junk, &params, &CaTerminal::default())
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, CaError::Malformed { .. }), "{e}");
    // An empty answer (no 7C at all) is accepted, as chips send it.
    let mut empty = |_: &Command| -> Result<Response, ()> { Ok(Response::status(0x9000)) };
    assert!(
        authenticate(&mut empty, &params, &CaTerminal::default())
            .unwrap()
            .is_ok()
    );
    // A DG14 key off the curve: nothing is sent.
    let mut off = params.clone();
    off.chip_key[10] ^= 1;
    let mut nothing = |cmd: &Command| -> Result<Response, ()> { panic!("sent {cmd}") };
    let e = authenticate(&mut nothing, &off, &CaTerminal::default())
        .unwrap()
        .unwrap_err();
    assert!(
        e.to_string().contains("not a point on brainpoolP256r1"),
        "{e}"
    );
    // Transport errors pass through.
    let mut gone = |_: &Command| -> Result<Response, &str> { Err("removed") };
    assert_eq!(
        authenticate(&mut gone, &params, &CaTerminal::default()).err(),
        Some("removed")
    );
}

#[test]
fn what_dg14_offers_is_chosen_or_named() {
    use security_infos::build;
    let none = |infos: &[Vec<u8>]| choose(&security_infos::parse(&build::set(infos)).unwrap());
    let g = Curve::NistP256.generator();
    // Only a PACEInfo (the AT passport's DG14 without its CA entries).
    assert!(matches!(
        none(&[h("3012060A04007F0007020204020202010202010D")]),
        CaOffer::None(_)
    ));
    // AES preferred to 3DES; key ids matched.
    let mut infos =
        build::chip_authentication_with_key_id(Cipher::Tdes, Curve::NistP256, &g, Some(1));
    let bp = Curve::BrainpoolP256r1.generator();
    infos.extend(build::chip_authentication_with_key_id(
        Cipher::Aes256,
        Curve::BrainpoolP256r1,
        &bp,
        Some(2),
    ));
    let CaOffer::Supported(p) = none(&infos) else {
        panic!()
    };
    assert_eq!(
        (p.cipher, p.curve, p.key_id, p.chip_key),
        (Cipher::Aes256, Curve::BrainpoolP256r1, Some(2), bp.clone())
    );
    // A key id with no key behind it, DH, version 2, and a curve countersign does not have are
    // each named.
    let missing = vec![h("3012060A04007F00070202030202020101020107")];
    let CaOffer::Unsupported(why) = none(&missing) else {
        panic!()
    };
    assert_eq!(
        why,
        "chip authentication (ECDH AES-128) without its public key 7"
    );
    let dh = vec![h("300F060A04007F00070202030102020101")];
    assert_eq!(
        none(&dh),
        CaOffer::Unsupported("chip authentication with DH AES-128".into())
    );
    let v2 = vec![
        h("300F060A04007F00070202030202020102"),
        build::chip_authentication(Cipher::Aes128, Curve::NistP256, &g)[1].clone(),
    ];
    let CaOffer::Unsupported(why) = none(&v2) else {
        panic!()
    };
    assert!(why.contains("version 2"), "{why}");
    // brainpoolP512r1 by name: the AT key's SPKI with the named curve instead.
    let named = |oid: &str| {
        let spki = tlv::encode(
            0x30,
            &[
                tlv::encode(
                    0x30,
                    &[
                        tlv::encode(0x06, &h("2A8648CE3D0201")),
                        tlv::encode(0x06, &h(oid)),
                    ]
                    .concat(),
                ),
                tlv::encode(0x03, &[&[0][..], &g[..]].concat()),
            ]
            .concat(),
        );
        vec![
            h("300F060A04007F00070202030202020101"),
            tlv::encode(
                0x30,
                &[tlv::encode(0x06, &security_infos::ID_PK_ECDH), spki].concat(),
            ),
        ]
    };
    assert_eq!(
        none(&named("2B240303020801010D")),
        CaOffer::Unsupported("chip authentication (ECDH AES-128) on brainpoolP512r1".into())
    );
    assert_eq!(
        none(&named("2B81040027")),
        CaOffer::Unsupported(
            "chip authentication (ECDH AES-128) on named curve 1.3.132.0.39".into()
        )
    );
    // The explicit parameters of the recorded DG14s are recognised; changing their base point
    // makes them unknown.
    assert_eq!(params_of(AT.dg14).curve, Curve::BrainpoolP256r1);
    let changed = AT.dg14.replace("8BD2AEB9CB7E57CB", "8BD2AEB9CB7E57CC");
    let infos = security_infos::parse(&h(&changed)).unwrap();
    assert!(
        matches!(choose(&infos), CaOffer::Unsupported(ref w) if w.contains("explicit domain parameters of no supported curve")),
        "{:?}",
        choose(&infos)
    );
    assert!(AT.dg14.contains(BP256_EXPLICIT_KEY_PREFIX));
}

#[test]
fn the_chip_side_answers_the_terminal_on_every_curve_and_cipher() {
    for curve in Curve::ALL {
        for cipher in [Cipher::Tdes, Cipher::Aes128, Cipher::Aes192, Cipher::Aes256] {
            for (key_id, genuine) in [(None, true), (Some(3), true), (None, false)] {
                let sk = curve.random_scalar();
                let pk = curve.mul(&sk, &curve.generator(), "G").unwrap();
                let held = if genuine { sk } else { curve.random_scalar() };
                let mut chip = chip::CaChip::new(curve, cipher, key_id, held);
                let params = CaParams {
                    cipher,
                    curve,
                    oid: CaParams::oid_for(cipher),
                    key_id,
                    chip_key: pk,
                    inferred: false,
                };
                let mut chip_sm = None;
                let mut transmit = |cmd: &Command| -> Result<Response, ()> {
                    Ok(match (cmd.ins, cmd.p2) {
                        (0x22, 0xA6) => match chip.set_kat(cmd) {
                            Ok(sm) => {
                                chip_sm = Some(sm);
                                Response::status(0x9000)
                            }
                            Err(sw) => Response::status(sw),
                        },
                        (0x22, _) => match chip.set_at(cmd) {
                            Ok(()) => Response::status(0x9000),
                            Err(sw) => Response::status(sw),
                        },
                        _ => match chip.general_authenticate(cmd) {
                            Ok((answer, sm)) => {
                                chip_sm = Some(sm);
                                Response::new(answer, 0x9000)
                            }
                            Err(sw) => Response::status(sw),
                        },
                    })
                };
                let mut reader = authenticate(&mut transmit, &params, &CaTerminal::default())
                    .unwrap()
                    .unwrap();
                let mut card = chip_sm.unwrap();
                let cmd = Command::new(0, 0xB0, 0, 0).with_le(4);
                let on_card = card.unprotect_command(&reader.protect(&cmd));
                let what = format!("{curve:?} {cipher:?} {key_id:?} genuine {genuine}");
                if genuine {
                    assert_eq!(on_card, Ok(cmd), "{what}");
                    let answer = card.protect_response(&Response::new(vec![1, 2, 3, 4], 0x9000));
                    assert_eq!(
                        reader.unprotect(&answer),
                        Ok(Response::new(vec![1, 2, 3, 4], 0x9000)),
                        "{what}"
                    );
                } else {
                    assert!(on_card.is_err(), "{what}");
                }
            }
        }
    }
}

#[test]
fn the_chip_side_refuses_what_it_does_not_offer() {
    let curve = Curve::NistP256;
    let sk = curve.random_scalar();
    let pk = curve.mul(&sk, &curve.generator(), "G").unwrap();
    let mut aes = chip::CaChip::new(curve, Cipher::Aes128, Some(5), sk.clone());
    // KAT is 3DES's; another protocol OID; another key; GENERAL AUTHENTICATE out of order.
    let kat = Command::new(0, 0x22, 0x41, 0xA6).with_data(tlv::encode(0x91, &pk));
    assert_eq!(aes.set_kat(&kat).err(), Some(0x6A80));
    let at = |oid: Vec<u8>, key: Option<u32>| {
        let mut data = tlv::encode(0x80, &oid);
        data.extend(key.map(key_reference).unwrap_or_default());
        Command::new(0, 0x22, 0x41, 0xA4).with_data(data)
    };
    assert_eq!(
        aes.set_at(&at(CaParams::oid_for(Cipher::Aes256), None)),
        Err(0x6A80)
    );
    assert_eq!(
        aes.set_at(&at(CaParams::oid_for(Cipher::Aes128), Some(6))),
        Err(0x6A88)
    );
    let ga = Command::new(0, 0x86, 0, 0).with_data(dynamic_data(0x80, &pk));
    assert_eq!(aes.general_authenticate(&ga).err(), Some(0x6985));
    aes.set_at(&at(CaParams::oid_for(Cipher::Aes128), Some(5)))
        .unwrap();
    // An ephemeral key off the curve.
    let mut bad = pk.clone();
    bad[3] ^= 1;
    let ga_bad = Command::new(0, 0x86, 0, 0).with_data(dynamic_data(0x80, &bad));
    assert_eq!(aes.general_authenticate(&ga_bad).err(), Some(0x6A80));
    let mut tdes = chip::CaChip::new(curve, Cipher::Tdes, None, sk);
    assert_eq!(
        tdes.set_at(&at(CaParams::oid_for(Cipher::Tdes), None)),
        Err(0x6A80)
    );
    assert!(tdes.set_kat(&kat).is_ok());
    let junk = Command::new(0, 0x22, 0x41, 0xA6).with_data(vec![0x91, 0x05, 0x04]);
    assert_eq!(tdes.set_kat(&junk).err(), Some(0x6A80));
}
