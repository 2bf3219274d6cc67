#!/usr/bin/env python3
"""Signed receipts (issue 14) made and checked with independent libraries, for the e2e tests.

A receipt is the case system's answer on countersign/v1/<station>/acks: a compact JWS with the
protected header {"alg", "kid", "typ": "vnd.countersign.ack+jws"} over a JSON payload (stored,
rejected or progress). Ed25519 (EdDSA) and P-256 (ES256) are signed with joserfc or jwcrypto,
SM2 (SM3withSM2, user id 1234567812345678, signature r||s) with gmssl. Shares no code with
countersign. Also imported by case_system.py (sign_receipt, key_alg).

usage:
  receipt.py sign --key JWK --station S --record-id R --status stored|rejected|progress
      [--reason T] [--record-sha256 H | --record-file F]
      [--blob-id B --next-offset N --blob-sha256 H] [--iat T] [--signer joserfc|jwcrypto|gmssl]
      [--kid K] [--extra JSON]
    prints the compact JWS. --kid and --extra (fields merged into the payload) forge receipts
    that are wrong on purpose; hashes are used verbatim ("sha256:<hex>").
  receipt.py publish --port P --topic T (--payload-file F | --payload TEXT) [--client-id C]
    publishes one QoS 1 message on 127.0.0.1 and waits for the PUBACK.
    Exit 0 on a successful PUBACK, 1 otherwise.
  receipt.py verify --key PUBJWK --jws TEXT
    prints the payload JSON. Exit 0: valid; 1: bad signature (or unreadable); 2: the signature
    is good but the header or payload is not as the spec says (payload printed, reason on stderr).
  receipt.py selftest
    signs and verifies with every alg/signer pair (keys generated here) and checks that tampered
    receipts fail.
"""

import argparse
import base64
import hashlib
import json
import pathlib
import re
import secrets
import sys
import time
import warnings

# The spec's alg is "EdDSA" (RFC 9864 prefers "Ed25519"); joserfc warns on each use.
warnings.filterwarnings("ignore", message="EdDSA is deprecated")

TYP = "vnd.countersign.ack+jws"
SHA_REF = re.compile(r"sha256:[0-9a-f]{64}")
# Fields each kind of receipt carries, and nothing else (receipt-spec).
FIELDS = {
    "stored": {"station", "record_id", "status", "record_sha256", "iat"},
    "rejected": {"station", "record_id", "status", "reason", "record_sha256", "iat"},
    "progress": {"station", "record_id", "blob_id", "status", "next_offset", "blob_sha256", "iat"},
}


class BadSignature(Exception):
    pass


class NotPerSpec(Exception):
    """The signature is good; the header or payload is not what the spec allows."""


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sha256_ref(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def key_alg(jwk: dict) -> str:
    """The JWS alg a key signs with."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519":
        return "EdDSA"
    if kty == "EC" and crv == "P-256":
        return "ES256"
    if kty == "EC" and crv == "SM2":
        return "SM2"
    raise ValueError(f"unsupported signing key kty={kty!r} crv={crv!r} (want Ed25519, P-256 or SM2)")


def thumbprint(jwk: dict) -> str:
    """RFC 7638 thumbprint of the public part (countersign's kid)."""
    names = ("crv", "kty", "x") if jwk["kty"] == "OKP" else ("crv", "kty", "x", "y")
    members = {n: jwk[n] for n in names}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64u(hashlib.sha256(canonical.encode()).digest())


def payload_bytes(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# -- SM2 (gmssl) ---------------------------------------------------------------------------------

def _sm2(jwk: dict, private: bool):
    from gmssl import sm2

    x, y = b64d(jwk["x"]), b64d(jwk["y"])
    if len(x) != 32 or len(y) != 32:
        raise ValueError("SM2 key: x and y must be 32 bytes")
    d = None
    if private:
        if "d" not in jwk:
            raise ValueError("SM2 key has no private part \"d\"")
        d = b64d(jwk["d"]).hex()
    crypt = sm2.CryptSM2(private_key=d, public_key=x.hex() + y.hex())
    # gmssl's constructor does public_key.lstrip("04") when the hex starts with "04", which
    # eats leading bytes of x; set the point directly.
    crypt.public_key = x.hex() + y.hex()
    return crypt


def _sm2_nonce() -> str:
    # gmssl's default nonce comes from `random`, which is not a CSPRNG; k must be in [1, n-1].
    from gmssl import sm2

    n = int(sm2.default_ecc_table["n"], 16)
    while True:
        k = secrets.randbelow(n)
        if k:
            return "%064x" % k


def sm2_sign(jwk: dict, signing_input: bytes) -> bytes:
    crypt = _sm2(jwk, private=True)
    for _ in range(16):  # sign() returns None for the (rare) unusable nonce
        sig = crypt.sign_with_sm3(signing_input, _sm2_nonce())
        if sig:
            return bytes.fromhex(sig)
    raise RuntimeError("gmssl could not produce an SM2 signature")


def sm2_verify(jwk: dict, signing_input: bytes, sig: bytes) -> bool:
    from gmssl import sm2

    if len(sig) != 64:
        return False
    n = int(sm2.default_ecc_table["n"], 16)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    if not (0 < r < n and 0 < s < n):  # gmssl does not check the ranges itself
        return False
    try:
        return bool(_sm2(jwk, private=False).verify_with_sm3(sig.hex(), signing_input))
    except (TypeError, ValueError):  # gmssl fails this way on a point that is not on the curve
        return False


# -- signing -------------------------------------------------------------------------------------

def sign_receipt(jwk: dict, payload: dict, signer: str = None, kid: str = None) -> str:
    """The compact JWS of `payload` under the private JWK `jwk`."""
    alg = key_alg(jwk)
    signer = signer or ("gmssl" if alg == "SM2" else "joserfc")
    if (alg == "SM2") != (signer == "gmssl"):
        raise ValueError(f"signer {signer} cannot sign {alg} (gmssl is for SM2 only, and SM2 needs it)")
    header = {"alg": alg, "kid": kid or thumbprint(jwk), "typ": TYP}
    body = payload_bytes(payload)
    if signer == "gmssl":
        signing_input = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + b64u(body)
        return signing_input + "." + b64u(sm2_sign(jwk, signing_input.encode("ascii")))
    if signer == "joserfc":
        from joserfc import jws
        from joserfc.jwk import ECKey, OKPKey

        key = (OKPKey if jwk["kty"] == "OKP" else ECKey).import_key(jwk)
        return jws.serialize_compact(header, body, key, algorithms=[alg])
    if signer == "jwcrypto":
        from jwcrypto import jwk as jc_jwk, jws as jc_jws

        token = jc_jws.JWS(body)
        token.allowed_algs = [alg]
        token.add_signature(jc_jwk.JWK(**jwk), alg=None, protected=json.dumps(header))
        return token.serialize(compact=True)
    raise ValueError(f"unknown signer {signer!r} (joserfc, jwcrypto or gmssl)")


# -- verifying -----------------------------------------------------------------------------------

def verify_receipt(pub: dict, compact: str) -> tuple:
    """(header, payload) of a receipt whose signature `pub` made; raises BadSignature, then
    NotPerSpec (with the payload as its second argument) for a well-signed receipt off the spec."""
    pub = {k: v for k, v in pub.items() if k != "d"}
    alg = key_alg(pub)
    parts = compact.strip().split(".")
    if len(parts) != 3:
        raise BadSignature("not a compact JWS (three parts)")
    try:
        header = json.loads(b64d(parts[0]))
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
    except ValueError as e:
        raise BadSignature(f"unreadable protected header: {e}") from e
    if header.get("alg") != alg:
        raise BadSignature(f"header alg {header.get('alg')!r} is not the key's {alg}")
    if alg == "SM2":
        try:
            sig = b64d(parts[2])
            body = b64d(parts[1])
        except ValueError as e:
            raise BadSignature(f"unreadable part: {e}") from e
        if not sm2_verify(pub, f"{parts[0]}.{parts[1]}".encode("ascii"), sig):
            raise BadSignature("bad SM2 signature")
    else:
        from joserfc import jws
        from joserfc.errors import JoseError
        from joserfc.jwk import ECKey, OKPKey

        key = (OKPKey if pub["kty"] == "OKP" else ECKey).import_key(pub)
        try:
            body = jws.deserialize_compact(compact.strip(), key, algorithms=[alg]).payload
        except (JoseError, ValueError) as e:
            raise BadSignature(f"bad {alg} signature: {e!r}") from e
    try:
        payload = json.loads(body)
    except ValueError as e:
        raise NotPerSpec(f"payload is not JSON: {e}", None) from e
    problems = spec_problems(header, payload, pub)
    if problems:
        raise NotPerSpec("; ".join(problems), payload)
    return header, payload


def spec_problems(header: dict, payload, pub: dict) -> list:
    out = []
    if set(header) != {"alg", "kid", "typ"}:
        out.append(f"header members {sorted(header)} (want alg, kid, typ)")
    if header.get("typ") != TYP:
        out.append(f"typ {header.get('typ')!r}")
    if header.get("kid") != thumbprint(pub):
        out.append(f"kid {header.get('kid')!r} is not the key's thumbprint {thumbprint(pub)}")
    if not isinstance(payload, dict):
        return out + ["payload is not an object"]
    status = payload.get("status")
    if status not in FIELDS:
        return out + [f"status {status!r}"]
    if set(payload) != FIELDS[status]:
        out.append(f"{status} payload fields {sorted(payload)} (want {sorted(FIELDS[status])})")
    hash_field = "blob_sha256" if status == "progress" else "record_sha256"
    if not isinstance(payload.get(hash_field), str) or not SHA_REF.fullmatch(payload[hash_field]):
        out.append(f"{hash_field} is not sha256:<64 lowercase hex>")
    for field in ("iat", "next_offset") if status == "progress" else ("iat",):
        value = payload.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            out.append(f"{field} is not a non-negative integer")
    if status == "rejected" and len(str(payload.get("reason", "")).encode()) > 256:
        out.append("reason longer than 256 bytes")
    return out


# -- payloads ------------------------------------------------------------------------------------

def make_payload(station, record_id, status, record_sha256=None, reason=None, blob_id=None,
                 next_offset=None, blob_sha256=None, iat=None) -> dict:
    iat = int(time.time()) if iat is None else iat
    if status == "progress":
        return {"station": station, "record_id": record_id, "blob_id": blob_id,
                "status": "progress", "next_offset": next_offset, "blob_sha256": blob_sha256,
                "iat": iat}
    payload = {"station": station, "record_id": record_id, "status": status}
    if status == "rejected":
        payload["reason"] = reason
    payload["record_sha256"] = record_sha256
    payload["iat"] = iat
    return payload


# -- commands ------------------------------------------------------------------------------------

def read_jwk(path: str) -> dict:
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"receipt.py: cannot read JWK {path}: {e}") from e


def cmd_sign(a, ap):
    if a.status == "progress":
        missing = [n for n in ("blob_id", "next_offset", "blob_sha256") if getattr(a, n) is None]
        if missing:
            ap.error("--status progress needs " + ", ".join("--" + m.replace("_", "-") for m in missing))
        record_sha256 = None
    else:
        if a.record_file:
            record_sha256 = sha256_ref(pathlib.Path(a.record_file).read_bytes())
        elif a.record_sha256:
            record_sha256 = a.record_sha256
        else:
            ap.error(f"--status {a.status} needs --record-sha256 or --record-file")
        if a.status == "rejected" and a.reason is None:
            ap.error("--status rejected needs --reason")
    payload = make_payload(a.station, a.record_id, a.status, record_sha256, a.reason, a.blob_id,
                           a.next_offset, a.blob_sha256, a.iat)
    if a.extra:
        payload.update(json.loads(a.extra))
    print(sign_receipt(read_jwk(a.key), payload, a.signer, a.kid))


def cmd_publish(a, ap):
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    if (a.payload is None) == (a.payload_file is None):
        ap.error("give exactly one of --payload and --payload-file")
    data = a.payload.encode() if a.payload is not None else pathlib.Path(a.payload_file).read_bytes()
    connected, acked = threading.Event(), threading.Event()
    outcome = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        outcome["connect"] = reason_code
        connected.set()

    def on_publish(client, userdata, mid, reason_code, properties):
        outcome["puback"] = reason_code
        acked.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=a.client_id,
                         protocol=mqtt.MQTTv5)
    client.on_connect, client.on_publish = on_connect, on_publish
    try:
        client.connect("127.0.0.1", a.port, keepalive=30)
    except OSError as e:
        print(f"receipt.py publish: cannot connect to 127.0.0.1:{a.port}: {e}", file=sys.stderr)
        return 1
    client.loop_start()
    try:
        if not connected.wait(a.timeout) or outcome["connect"].is_failure:
            print(f"receipt.py publish: not connected: {outcome.get('connect')}", file=sys.stderr)
            return 1
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/jose" if data.count(b".") == 2 else "application/json"
        client.publish(a.topic, data, qos=1, properties=props)
        if not acked.wait(a.timeout):
            print(f"receipt.py publish: no PUBACK within {a.timeout} s", file=sys.stderr)
            return 1
        if outcome["puback"].is_failure:
            print(f"receipt.py publish: PUBACK says {outcome['puback']}", file=sys.stderr)
            return 1
        return 0
    finally:
        client.disconnect()
        client.loop_stop()


def cmd_verify(a, ap):
    try:
        _, payload = verify_receipt(read_jwk(a.key), a.jws)
    except BadSignature as e:
        print(f"receipt.py verify: {e}", file=sys.stderr)
        return 1
    except NotPerSpec as e:
        if e.args[1] is not None:
            print(json.dumps(e.args[1], ensure_ascii=False))
        print(f"receipt.py verify: signature good, not per spec: {e.args[0]}", file=sys.stderr)
        return 2
    print(json.dumps(payload, ensure_ascii=False))
    return 0


# A fixed SM2 test key whose x starts with byte 04 (gmssl's constructor mangles such points).
SM2_D_X04 = 0xA417F7676B40B53C18E3E9BD0879ABBFFFF4EFD6700B58CFAF171CB480677F17


def sm2_jwk(d: int) -> dict:
    """The private SM2 JWK of d, its public point d*G computed by gmssl."""
    from gmssl import sm2

    point = sm2.CryptSM2(private_key=None, public_key="")._kg(d, sm2.default_ecc_table["g"])
    jwk = {"kty": "EC", "crv": "SM2", "x": b64u(bytes.fromhex(point[:64])),
           "y": b64u(bytes.fromhex(point[64:])), "d": b64u(d.to_bytes(32, "big")), "use": "sig"}
    jwk["kid"] = thumbprint(jwk)
    return jwk


def generate_keys() -> dict:
    """Private JWKs of every kind, made with the Python libraries (no countersign binary)."""
    from gmssl import sm2
    from joserfc.jwk import ECKey, OKPKey

    keys = {"Ed25519": OKPKey.generate_key("Ed25519").as_dict(private=True),
            "P-256": ECKey.generate_key("P-256").as_dict(private=True)}
    for jwk in keys.values():
        jwk["kid"] = thumbprint(jwk)
    n = int(sm2.default_ecc_table["n"], 16)
    keys["SM2"] = sm2_jwk(1 + secrets.randbelow(n - 2))  # d in [1, n-2]
    return keys


def cmd_selftest(a, ap):
    keys = generate_keys()
    keys["SM2, x starting 04"] = sm2_jwk(SM2_D_X04)
    record = b"a.record.as.received"
    cases = [("Ed25519", "joserfc"), ("Ed25519", "jwcrypto"), ("P-256", "joserfc"),
             ("P-256", "jwcrypto"), ("SM2", "gmssl"), ("SM2, x starting 04", "gmssl")]
    payloads = [
        make_payload("st-1", "rec-1", "stored", sha256_ref(record)),
        make_payload("st-1", "unknown", "rejected", sha256_ref(record), reason="signature: 签名"),
        make_payload("st-1", "rec-1", "progress", blob_id="blob-1", next_offset=4096,
                     blob_sha256=sha256_ref(b"blob")),
    ]
    failures = 0

    def check(what, ok):
        nonlocal failures
        print(("ok     " if ok else "FAILED ") + what)
        failures += 0 if ok else 1

    for crv, signer in cases:
        priv = keys[crv]
        pub = {k: v for k, v in priv.items() if k != "d"}
        for payload in payloads:
            compact = sign_receipt(priv, payload, signer)
            name = f"{crv}/{signer}/{payload['status']}"
            try:
                header, got = verify_receipt(pub, compact)
                check(f"{name}: verifies, header {header}", got == payload)
            except (BadSignature, NotPerSpec) as e:
                check(f"{name}: verifies ({e})", False)
            is_sm2 = priv["crv"] == "SM2"
            if not is_sm2:  # the other library must accept it too
                check(f"{name}: jwcrypto accepts it", jwcrypto_verifies(pub, compact))
            h, p, s = compact.split(".")
            forged = dict(payload, record_id="rec-2")
            tampered = {
                "payload": f"{h}.{b64u(payload_bytes(forged))}.{s}",
                "signature": f"{h}.{p}.{b64u(bytes(b ^ 1 if i == 5 else b for i, b in enumerate(b64d(s))))}",
                "other key": sign_receipt(keys["Ed25519" if is_sm2 else "SM2"], payload),
                "alg none": f"{b64u(json.dumps({'alg': 'none', 'typ': TYP}).encode())}.{p}.",
            }
            if is_sm2:
                tampered["same-alg other key"] = sign_receipt(generate_keys()["SM2"], payload)
            else:
                other = generate_keys()[crv]
                tampered["same-alg other key"] = sign_receipt(other, payload, signer)
            for how, bad in tampered.items():
                try:
                    verify_receipt(pub, bad)
                    check(f"{name}: tampered ({how}) is refused", False)
                except BadSignature:
                    check(f"{name}: tampered ({how}) is refused", True)
                except NotPerSpec:
                    check(f"{name}: tampered ({how}) is refused as a bad signature", False)
        # A good signature over a payload off the spec is told apart from a bad signature.
        extra = sign_receipt(priv, dict(payloads[0], note="x"), signer)
        try:
            verify_receipt(pub, extra)
            check(f"{crv}/{signer}: extra payload field is refused", False)
        except NotPerSpec:
            check(f"{crv}/{signer}: extra payload field is refused (not per spec)", True)
        except BadSignature:
            check(f"{crv}/{signer}: extra payload field is refused (not per spec)", False)
    check("kid of the Ed25519 key is its RFC 7638 thumbprint (joserfc agrees)",
          keys["Ed25519"]["kid"] == joserfc_thumbprint(keys["Ed25519"]))
    check("kid of the P-256 key is its RFC 7638 thumbprint (joserfc agrees)",
          keys["P-256"]["kid"] == joserfc_thumbprint(keys["P-256"]))
    print(f"selftest: {failures} failure(s)")
    return 1 if failures else 0


def jwcrypto_verifies(pub: dict, compact: str) -> bool:
    from jwcrypto import jwk as jc_jwk, jws as jc_jws

    token = jc_jws.JWS()
    try:
        token.deserialize(compact)
        token.verify(jc_jwk.JWK(**pub), alg=key_alg(pub))
        return True
    except Exception:  # noqa: BLE001 - any failure is "does not verify"
        return False


def joserfc_thumbprint(jwk: dict) -> str:
    from joserfc.jwk import ECKey, OKPKey

    return (OKPKey if jwk["kty"] == "OKP" else ECKey).import_key(jwk).thumbprint()


def main():
    ap = argparse.ArgumentParser(description="Signed receipts for countersign's e2e tests.")
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sign", help="print a receipt (compact JWS)")
    s.add_argument("--key", required=True, help="private JWK (station.jwk from countersign keygen)")
    s.add_argument("--station", required=True)
    s.add_argument("--record-id", required=True)
    s.add_argument("--status", required=True, choices=sorted(FIELDS))
    s.add_argument("--reason")
    h = s.add_mutually_exclusive_group()
    h.add_argument("--record-sha256", help="sha256:<hex>, used verbatim")
    h.add_argument("--record-file", help="the record message's exact payload bytes")
    s.add_argument("--blob-id")
    s.add_argument("--next-offset", type=int)
    s.add_argument("--blob-sha256", help="sha256:<hex> of the whole blob wire form, verbatim")
    s.add_argument("--iat", type=int, help="unix seconds (default: now)")
    s.add_argument("--signer", choices=["joserfc", "jwcrypto", "gmssl"],
                   help="default: gmssl for SM2 keys, joserfc otherwise")
    s.add_argument("--kid", help="header kid (default: the key's RFC 7638 thumbprint)")
    s.add_argument("--extra", help="JSON object merged into the payload (forged receipts)")
    p = sub.add_parser("publish", help="publish one QoS 1 message, wait for PUBACK")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--payload")
    p.add_argument("--payload-file")
    p.add_argument("--client-id", default="test-receipt-publisher")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    v = sub.add_parser("verify", help="check a receipt, print its payload")
    v.add_argument("--key", required=True, help="public JWK of the case-system key")
    v.add_argument("--jws", required=True)
    sub.add_parser("selftest", help="sign and verify with every alg/signer pair")
    a = ap.parse_args()
    run = {"sign": cmd_sign, "publish": cmd_publish, "verify": cmd_verify, "selftest": cmd_selftest}
    try:
        return run[a.command](a, ap) or 0
    except ValueError as e:
        print(f"receipt.py {a.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
