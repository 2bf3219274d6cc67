#!/usr/bin/env python3
"""Verifies ICAO 9303 Active Authentication answers independently of countersign, with the
`cryptography` package, written from ISO/IEC 9796-2 (digital signature scheme 1, partial message
recovery) and ICAO Doc 9303-11 §6.1 (and docs/record-format.md for the chain-bound challenge).

usage: aa_verify.py FILE        FILE: JSON, a list of records (or a record, or an identity's
                                "active_authentication" object); every exchange found is checked
       aa_verify.py --self-test the published vectors (Doc 9303-11 Appendix F; a recorded
                                passport exchange from the Go reader gmrtd's tests)

Prints one line per exchange ("ok ..." or "FAIL ..."); exits 1 on any failure or when nothing
was checked.
"""

import base64
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key

# ISO/IEC 10118-3 hash identifiers of the two-byte trailer "hh CC" (ISO/IEC 9796-2 §10.2).
TRAILER_HASHES = {0x33: "sha1", 0x34: "sha256", 0x35: "sha512", 0x36: "sha384", 0x38: "sha224"}
ECDSA_HASHES = {
    "SHA-1": hashes.SHA1,
    "SHA-224": hashes.SHA224,
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}
CONTEXT = b"countersign active authentication challenge v1"


class Failure(Exception):
    pass


def der_length(data: bytes, at: int):
    """(length, offset of the value) of the DER length at `at`."""
    first = data[at]
    if first < 0x80:
        return first, at + 1
    n = first & 0x7F
    if n == 0 or n > 3 or at + 1 + n > len(data):
        raise Failure("bad DER length")
    return int.from_bytes(data[at + 1 : at + 1 + n], "big"), at + 1 + n


def unwrap_dg15(dg15: bytes) -> bytes:
    """DG15 is tag 6F around a SubjectPublicKeyInfo (Doc 9303-10 §4.7.15)."""
    if not dg15 or dg15[0] != 0x6F:
        raise Failure("DG15 does not start with tag 6F")
    length, at = der_length(dg15, 1)
    if at + length != len(dg15):
        raise Failure("DG15's length does not match its size")
    return dg15[at:]


def recover_iso9796_2(f: bytes, m2: bytes) -> str:
    """Checks a recovered message representative F = header | padding | M1 | H | trailer with M2
    the non-recoverable part; returns the hash name."""
    if len(f) < 3 or f[0] & 0xC0 != 0x40:
        raise Failure("no ISO/IEC 9796-2 header (the two leading bits are not 01)")
    if f[0] & 0x20 == 0:
        raise Failure("total recovery: the challenge must be the non-recoverable part M2")
    if f[-1] == 0xBC:
        name, t = "sha1", 1
    elif f[-1] == 0xCC:
        name, t = TRAILER_HASHES.get(f[-2]), 2
        if name is None:
            raise Failure(f"unknown hash identifier {f[-2]:02X} in the trailer")
    else:
        raise Failure("no ISO/IEC 9796-2 trailer (BC or hh CC)")
    h_len = hashlib.new(name).digest_size
    # The padding field is nibbles 'B' closed by a nibble 'A'; the header byte carries the first.
    start = next((i + 1 for i, b in enumerate(f) if b & 0x0F == 0x0A), None)
    if start is None:
        raise Failure("the padding field is not closed")
    h_at = len(f) - t - h_len
    if h_at <= start:
        raise Failure("the representative is too short for M1 and its hash")
    m1, h = f[start:h_at], f[h_at : h_at + h_len]
    if hashlib.new(name, m1 + m2).digest() != h:
        raise Failure(f"H is not {name}(M1 | challenge)")
    return name


def verify_rsa(key: rsa.RSAPublicKey, challenge: bytes, signature: bytes) -> str:
    numbers = key.public_numbers()
    k = (numbers.n.bit_length() + 7) // 8
    s = int.from_bytes(signature, "big")
    if len(signature) > k or s >= numbers.n:
        raise Failure("the signature is not below the modulus")
    j = pow(s, numbers.e, numbers.n)
    # ISO/IEC 9796-2 lets the signer send min(J, n - J): the representative ends in nibble C.
    if j & 0x0F != 0x0C:
        j = numbers.n - j
    name = recover_iso9796_2(j.to_bytes(k, "big"), challenge)
    return f"RSA-{numbers.n.bit_length()} ISO/IEC 9796-2 scheme 1 {name}"


def verify_ecdsa(key: ec.EllipticCurvePublicKey, challenge: bytes, signature: bytes, hash_name):
    """Doc 9303-11 §6.1: the plain signature r | s (BSI TR-03111) over the challenge."""
    if hash_name not in ECDSA_HASHES:
        raise Failure(f"no usable hash for ECDSA: {hash_name!r}")
    size = (key.curve.key_size + 7) // 8
    if len(signature) != 2 * size:
        raise Failure(f"a plain ECDSA signature on {key.curve.name} has {2 * size} bytes")
    r = int.from_bytes(signature[:size], "big")
    s = int.from_bytes(signature[size:], "big")
    try:
        key.verify(encode_dss_signature(r, s), challenge, ec.ECDSA(ECDSA_HASHES[hash_name]()))
    except InvalidSignature:
        raise Failure("the ECDSA signature does not verify") from None
    return f"ECDSA {key.curve.name} {hash_name}"


def verify_answer(dg15: bytes, challenge: bytes, signature: bytes, ecdsa_hash=None) -> str:
    key = load_der_public_key(unwrap_dg15(dg15))
    if isinstance(key, rsa.RSAPublicKey):
        return verify_rsa(key, challenge, signature)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return verify_ecdsa(key, challenge, signature, ecdsa_hash)
    raise Failure("DG15 holds neither an RSA nor an EC key")


def chain_challenge(station: str, bound_seq, bound_record, read_at: str) -> bytes:
    """docs/record-format.md: SHA-256 over length-prefixed fields, first 8 bytes."""
    fields = [
        CONTEXT,
        station.encode(),
        b"" if bound_seq is None else str(bound_seq).encode(),
        (bound_record or "").encode(),
        read_at.encode(),
    ]
    data = b"".join(struct.pack(">I", len(f)) + f for f in fields)
    return hashlib.sha256(data).digest()[:8]


def check_exchange(aa: dict) -> str:
    challenge = bytes.fromhex(aa["challenge"])
    if len(challenge) != 8:
        raise Failure("the challenge is not 8 bytes")
    note = "random challenge"
    if aa["challenge_source"] == "chain":
        derived = chain_challenge(
            aa["station"], aa.get("bound_seq"), aa.get("bound_record"), aa["read_at"]
        )
        if derived != challenge:
            raise Failure("the challenge is not derived from its recorded inputs")
        note = f"challenge derived from record {aa.get('bound_seq')} of {aa['station']}"
    what = verify_answer(
        base64.b64decode(aa["dg15"]),
        challenge,
        base64.b64decode(aa["signature"]),
        aa.get("ecdsa_hash"),
    )
    return f"{what}; {note}"


def exchanges(value):
    """Every active_authentication object in records, identities or a bare exchange."""
    if isinstance(value, list):
        for item in value:
            yield from exchanges(item)
    elif isinstance(value, dict):
        if "challenge_source" in value and "signature" in value:
            yield value
        for key in ("identities", "active_authentication"):
            if key in value:
                yield from exchanges(value[key])


def self_test() -> int:
    # Doc 9303-11 Appendix F: F = 6A | M1 | H | BC for RND.IFD F173589974BF40C6 (no key given).
    m1 = bytes.fromhex(
        "9D2784A67F8E7C659973EA1AEA25D95B6C8F91E5002F369F0FBDCE8A3CEC1991"
        "B543F1696546C5524CF23A5303CD6C98599F40B79F377B5F3A1406B3B4D8F967"
        "84D23AA88DB7E1032A405E69325FA91A6E86F5C71AEA978264C4A207446DAD4E"
        "7292E2DCDA3024B47DA8"
    )
    h = bytes.fromhex("C063AA1E6D22FBD976AB0FE73D94D2D9C6D88127")
    assert recover_iso9796_2(b"\x6a" + m1 + h + b"\xbc", bytes.fromhex("F173589974BF40C6")) == "sha1"
    # gmrtd, activeauth/active_auth_test.go (TestDoActiveAuth): a real passport's DG15, the
    # challenge and the signature unwrapped from secure messaging.
    dg15 = bytes.fromhex(
        "6F8201023081FF300D06092A864886F70D01010105000381ED003081E90281E100BB8F93F4DC95E205CDA17C"
        "6927AB1E365B13065D03CD12E0FCE95D96840529453202F56CC4C13F77CD062930C8BC89A2873B257045C286"
        "E601CF3C09323A53103314902804AA10A314628CE222206A8866946A36B442041BB54AC81E6855DD1D6E1610"
        "1833D65A191C20AC8B33B8A1A32920F46043F8031CF2BC17417030865FC5BE5A39DEE423BCBA3CA8177168EB"
        "23CFE01BA43EC87711B1CFFF85DB46F300DD8AE317B50D543B573E119E23AF7070D0B2FED6A3B2313A5EC02A"
        "531AAED1741F4390D1013E2A0F081EAC5DC8B0A1B2C6BDB1206F08D30E3643E1E5BDF536110203010001"
    )
    sig = bytes.fromhex(
        "474256306840c0ab1b63c10e1c26bdfef4a0dd843920283cc4e6e70a60f2bd25dc7725f9677bc1cde66379dc"
        "28b38e8490f33afb2d10f9980c44c0bfc175d2b6684218f535c92fdd3e18db770a9ccbf91db3c7f0138e6d9e"
        "94b9bc8371761e3abed5e5e9b260279cfb238b58ae0d6a01da51c74c2a3ecd62c448bd9f20127f7384587287"
        "fa971204234e55b1a856c3e5aaaa620bb799a68fbae08ee132bb61683eba9b0b40dc1e54641cad975b16991c"
        "ab50af82e3f3985afd19e7427a125f5b4b9878b12a5d2e01c7eedca3bb41c6fc05dccd818bce379d04b1f2f5"
        "d43487d3"
    )
    challenge = bytes.fromhex("96302b0f3d7e7864")
    assert verify_answer(dg15, challenge, sig) == "RSA-1792 ISO/IEC 9796-2 scheme 1 sha256"
    try:
        verify_answer(dg15, bytes(8), sig)
        raise AssertionError("a wrong challenge verified")
    except Failure:
        pass
    print("ok    self-test: Appendix F and the recorded passport exchange")
    return 0


def main(argv) -> int:
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        found = list(exchanges(json.load(f)))
    failures = 0
    for i, aa in enumerate(found):
        try:
            print(f"ok    exchange {i}: {check_exchange(aa)}")
        except (Failure, ValueError, KeyError) as e:
            failures += 1
            print(f"FAIL  exchange {i}: {e}")
    print(f"{len(found)} exchange(s) checked: {failures} failed")
    return 1 if failures or not found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
