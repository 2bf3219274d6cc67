#!/usr/bin/env python3
"""Opens countersign record files with joserfc: decrypts each JWE with the case system's private
JWK, verifies the inner JWS against the station's public JWK, validates the payload against
docs/record.schema.json, and checks every evidence blob (in BLOBS_DIR, also JWEs) against the
signed manifest.

usage: verify_records.py RECORDS_DIR station.pub.jwk case-system.jwk [BLOBS_DIR]
Prints one line per record and exits non-zero if any record fails or none is found.
"""

import hashlib
import json
import pathlib
import sys

import jsonschema
from joserfc import jwe, jws
from joserfc.jwk import ECKey, OKPKey

# joserfc refuses ciphertexts over 64 KiB by default; scanned pages are megabytes.
JWE_REGISTRY = jwe.JWERegistry(algorithms=["ECDH-ES+A256KW", "A256GCM"])
JWE_REGISTRY.max_ciphertext_length = 512 * 1024 * 1024

SCHEMA = json.loads((pathlib.Path(__file__).parents[2] / "docs/record.schema.json").read_text())


def import_key(path: pathlib.Path):
    data = json.loads(path.read_text())
    return OKPKey.import_key(data) if data["kty"] == "OKP" else ECKey.import_key(data)


def main():
    records_dir = pathlib.Path(sys.argv[1])
    station_key = import_key(pathlib.Path(sys.argv[2]))
    case_key = import_key(pathlib.Path(sys.argv[3]))
    blobs_dir = pathlib.Path(sys.argv[4]) if len(sys.argv) > 4 else records_dir.parent / "blobs"
    files = sorted(records_dir.glob("*.jwe"))
    if not files:
        print(f"no records in {records_dir}", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        try:
            outer = jwe.decrypt_compact(path.read_bytes(), case_key, registry=JWE_REGISTRY)
            assert outer.protected["cty"] == "JOSE", "inner content is not a JOSE object"
            inner = jws.deserialize_compact(outer.plaintext, station_key,
                                            algorithms=["EdDSA", "ES256"])
            record = json.loads(inner.payload)
            jsonschema.validate(record, SCHEMA)  # the documented schema holds for real records
            assert record["record_id"] == path.stem, "file name differs from record_id"
            assert record["recipient_kid"] == outer.protected["kid"], "recipient not bound"
            for ref in record.get("evidence", []):
                blob = jwe.decrypt_compact((blobs_dir / f"{ref['blob_id']}.jwe").read_bytes(),
                                           case_key, registry=JWE_REGISTRY)
                digest = "sha256:" + hashlib.sha256(blob.plaintext).hexdigest()
                assert digest == ref["sha256"], f"blob {ref['blob_id']} altered"
            print(f"ok {path.name} seq={record['seq']} kid={inner.headers()['kid']} "
                  f"blobs={len(record.get('evidence', []))}")
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAILED {path.name}: {e!r}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
