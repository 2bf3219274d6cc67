#!/usr/bin/env python3
"""Sends one command to a countersign station as a case system would, and prints the response.

Commands are compact JWS (joserfc, EdDSA) with typ "vnd.countersign.command+jws", published over
MQTT 5 (paho-mqtt) to countersign/v1/<station>/commands with a response topic and correlation
data. Shares no code with countersign.

usage: commander.py --port P --station S --key case-sign.jwk COMMAND [ARGS_JSON]
         [--id ID] [--iat-offset SECONDS] [--unsigned] [--raw TEXT] [--typ TYP]
         [--response-topic TOPIC] [--listen TOPIC_FILTER ...]
Prints the response JSON (or {"timeout": true}) on stdout. With --listen, prints instead
{"response": ..., "seen": [[topic, payload], ...]}: everything that arrived on the filters
(and on the station's default responses topic) while waiting, and waits for the response there
when it does not come on the requested topic.
"""

import argparse
import json
import pathlib
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from joserfc import jws
from joserfc.jwk import OKPKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--station", required=True)
    ap.add_argument("--key", help="the case system's private signing JWK")
    ap.add_argument("--id", default=None)
    ap.add_argument("--iat-offset", type=int, default=0)
    ap.add_argument("--unsigned", action="store_true", help="send the JSON without a signature")
    ap.add_argument("--raw", help="send these bytes as they are")
    ap.add_argument("--typ", default="vnd.countersign.command+jws")
    ap.add_argument("--timeout", type=float, default=20, help="seconds to wait for the response")
    ap.add_argument("--station-claim", help="station named inside the command (default: --station)")
    ap.add_argument("--response-topic", help="the MQTT 5 response topic to ask for")
    ap.add_argument("--listen", action="append", default=[],
                    help="also subscribe to this filter and report what arrives")
    ap.add_argument("command")
    ap.add_argument("args", nargs="?", default="{}")
    a = ap.parse_args()

    body = {
        "id": a.id or str(uuid.uuid4()),
        "iat": int(time.time()) + a.iat_offset,
        "station": a.station_claim or a.station,
        "command": a.command,
        "args": json.loads(a.args),
    }
    payload = json.dumps(body).encode()
    if a.raw is not None:
        message = a.raw.encode()
    elif a.unsigned:
        message = payload
    else:
        key = OKPKey.import_key(json.loads(pathlib.Path(a.key).read_text()))
        header = {"alg": "EdDSA", "kid": key.thumbprint(), "typ": a.typ}
        message = jws.serialize_compact(header, payload, key, algorithms=["EdDSA"]).encode()

    default_topic = f"countersign/v1/{a.station}/responses"
    response_topic = a.response_topic or f"{default_topic}/{uuid.uuid4()}"
    correlation = uuid.uuid4().bytes
    done = threading.Event()
    result = {"timeout": True}
    seen = []
    filters = [response_topic] + (a.listen + [default_topic] if a.listen else [])
    pending = set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"commander-{uuid.uuid4()}",
                         protocol=mqtt.MQTTv5)

    def on_connect(client, userdata, flags, reason_code, properties):
        for f in filters:
            _, mid = client.subscribe(f, qos=1)
            pending.add(mid)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        pending.discard(mid)
        if pending:
            return
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = response_topic
        props.CorrelationData = correlation
        client.publish(f"countersign/v1/{a.station}/commands", message, qos=1, properties=props)

    def on_message(client, userdata, msg):
        nonlocal result
        if a.listen:
            seen.append([msg.topic, msg.payload.decode("utf-8", "replace")])
        if getattr(msg.properties, "CorrelationData", None) != correlation:
            return
        result = json.loads(msg.payload)
        done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", a.port, keepalive=30)
    client.loop_start()
    done.wait(timeout=a.timeout)
    if a.listen:
        time.sleep(1.0)  # anything the station published elsewhere arrives too
    client.loop_stop()
    if a.listen:
        result = {"response": result, "seen": seen}
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
