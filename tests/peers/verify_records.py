#!/usr/bin/env python3
"""Verifies countersign record files with joserfc against a station's public JWK.

usage: verify_records.py RECORDS_DIR station.pub.jwk
Prints one line per record and exits non-zero if any record fails or none is found.
"""

import json
import pathlib
import sys

from joserfc import jws
from joserfc.jwk import OKPKey


def main():
    records_dir, pubkey = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    key = OKPKey.import_key(json.loads(pubkey.read_text()))
    files = sorted(records_dir.glob("*.jws"))
    if not files:
        print(f"no records in {records_dir}", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        try:
            obj = jws.deserialize_compact(path.read_bytes(), key, algorithms=["EdDSA"])
            record = json.loads(obj.payload)
            assert record["record_id"] == path.stem, "file name differs from record_id"
            print(f"ok {path.name} seq={record['seq']} kid={obj.headers()['kid']}")
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAILED {path.name}: {e!r}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
