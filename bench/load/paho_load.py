#!/usr/bin/env python3
"""Third-party MQTT load generator for steward-bench, built on paho-mqtt.

It exists so that the hub's throughput figure can be checked with a client we did not
write: it publishes device-contract telemetry (`devices/{id}/telemetry`,
`{"ts": ms, "seq": n, "metrics": {...}}`) over N authenticated connections, one per
device, spread over one process per core because paho's client is CPU bound in Python.

Prints one JSON line at the end:
  {"sent": .., "acked": .., "secs": .., "rate": .., "start_unix": .., "end_unix": ..}
where `acked` counts PUBACKs (QoS 1) or messages written to the socket (QoS 0), `secs`
runs from the first publish of any process to the last ack of any process, and
`rate` = acked / secs. Exit status 0 only when every message was acked.
"""

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import select
import signal
import sys
import time

import paho.mqtt.client as mqtt

ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
KINDS = ("smoke", "pump", "lift", "gate")


class InputError(Exception):
    pass


def parse_broker(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise InputError(f"broker {text!r}: expected HOST:PORT")
    try:
        port_n = int(port)
    except ValueError:
        raise InputError(f"broker {text!r}: port {port!r} is not a number") from None
    if not 0 < port_n < 65536:
        raise InputError(f"broker {text!r}: port {port_n} is out of range 1-65535")
    return host, port_n


def read_estate_devices(path):
    """Devices of a Steward estate file (`[[devices]]` with `id`, `kind`, `secret`); devices
    without a plain-text secret (behind a gateway, or `secret_hash` only) are skipped."""
    try:
        import tomllib
    except ImportError:
        raise InputError(f"estate file {path}: reading TOML needs Python 3.11 or later") from None
    try:
        with open(path, "rb") as f:
            estate = tomllib.load(f)
    except OSError as e:
        raise InputError(f"estate file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"estate file {path}: {e}") from None
    rows = []
    for n, d in enumerate(estate.get("devices", []), 1):
        if not isinstance(d, dict) or not isinstance(d.get("id"), str) or not isinstance(d.get("kind"), str):
            raise InputError(f"estate file {path}: devices entry {n} has no string id or kind")
        if isinstance(d.get("secret"), str) and d["secret"]:
            rows.append((f"{path}: devices entry {n}", d["id"], d["secret"], d["kind"]))
    return check_devices(path, rows)


def read_devices(path):
    """Reads `device_id,secret,kind` lines; blank lines and lines starting with # are skipped.
    A path ending in .toml is read as an estate file instead."""
    if path.endswith(".toml"):
        return read_estate_devices(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        raise InputError(f"devices file {path}: {e.strerror}") from None
    rows = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            raise InputError(f"{path}:{n}: expected device_id,secret,kind, got {len(parts)} fields")
        if parts[0] == "device_id" and n == 1:
            continue  # header line
        rows.append((f"{path}:{n}", *parts))
    return check_devices(path, rows)


def check_devices(path, rows):
    """rows: (where, device_id, secret, kind); where names the line or entry in errors."""
    devices = []
    seen = set()
    for where, device_id, secret, kind in rows:
        if not ID_RE.match(device_id):
            raise InputError(f"{where}: device id {device_id!r} is not [A-Za-z0-9._-]{{1,64}}")
        if kind not in KINDS:
            raise InputError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
        if device_id in seen:
            raise InputError(f"{where}: device {device_id} is listed twice")
        seen.add(device_id)
        devices.append((device_id, secret, kind))
    if not devices:
        raise InputError(f"devices file {path}: no devices")
    return devices


def synthetic_devices(n):
    """Devices for a broker without authentication (e.g. Mosquitto alone): kinds in the
    proportions of the hub bench's compounds (8 smoke, 2 pump, 4 lift, 2 gate)."""
    pattern = ["smoke"] * 8 + ["pump"] * 2 + ["lift"] * 4 + ["gate"] * 2
    return [(f"paho-{i:05d}", "", pattern[i % len(pattern)]) for i in range(n)]


# Realistic readings per kind, within the catalogue's ranges (docs/device-contract.md §6).
def reading_smoke(rng, seq):
    return {
        "alarm": False,
        "pre_alarm": False,
        "fault": False,
        "tamper": False,
        "dirty": seq % 5000 == 4999,
        "obscuration_pct_per_m": round(rng.uniform(0.0, 0.4), 3),
        "co_ppm": round(rng.uniform(0.0, 6.0), 1),
        "temperature_c": round(rng.uniform(18.0, 27.0), 2),
        "battery_v": round(rng.uniform(2.9, 3.1), 3),
    }


def reading_pump(rng, seq):
    running = (seq // 50) % 3 != 0
    return {
        "running": running,
        "inlet_pressure_mpa": round(rng.uniform(0.15, 0.25), 4),
        "outlet_pressure_mpa": round(rng.uniform(0.55, 0.7) if running else 0.2, 4),
        "flow_m3h": round(rng.uniform(8.0, 14.0) if running else 0.0, 2),
        "power_kw": round(rng.uniform(3.5, 5.5) if running else 0.0, 2),
        "current_a": round(rng.uniform(7.0, 10.0) if running else 0.0, 2),
        "current_imbalance_pct": round(rng.uniform(0.5, 3.0), 2),
        "vibration_mm_s": round(rng.uniform(1.0, 3.5), 2),
        "bearing_temp_c": round(rng.uniform(35.0, 55.0), 1),
        "level_m": round(rng.uniform(1.0, 2.0), 3),
        "starts": 1200 + seq // 150,
        "run_hours": round(8000.0 + seq / 3600.0, 3),
    }


def reading_lift(rng, seq):
    moving = seq % 4 != 0
    return {
        "floor": (seq // 7) % 12,
        "direction": ("up", "down")[(seq // 84) % 2] if moving else "idle",
        "door": "closed" if moving else "open",
        "moving": moving,
        "occupied": rng.random() < 0.6,
        "trapped": False,
        "alarm_button": False,
        "in_landing_zone": not moving,
        "speed_m_s": round(rng.uniform(0.8, 1.6), 2) if moving else 0.0,
        "load_pct": round(rng.uniform(0.0, 80.0), 1),
        "levelling_error_mm": round(rng.uniform(-4.0, 4.0), 1),
        "mode": "normal",
        "door_cycles": 250000 + seq // 4,
        "run_hours": round(15000.0 + seq / 3600.0, 3),
    }


def reading_gate(rng, seq):
    phase = ("closed", "opening", "open", "closing")[(seq // 5) % 4]
    return {
        "state": phase,
        "locked": phase == "closed",
        "on_battery": False,
        "mode": "normal",
        "held_open_s": round(rng.uniform(2.0, 20.0), 1) if phase == "open" else 0.0,
        "motor_current_a": round(rng.uniform(1.5, 3.0), 2) if phase in ("opening", "closing") else 0.0,
        "cycles": 40000 + seq // 20,
    }


READINGS = {"smoke": reading_smoke, "pump": reading_pump, "lift": reading_lift, "gate": reading_gate}


class Publisher:
    """One MQTT connection of one device. Its process drives the socket itself (no paho
    network thread): with loop_start() every publish wakes a thread and the GIL hand-offs
    halve the rate."""

    def __init__(self, host, port, device, qos, inflight, keepalive, seed):
        self.device_id, secret, self.kind = device
        self.topic = f"devices/{self.device_id}/telemetry"
        self.qos = qos
        self.rng = random.Random(seed)
        self.make = READINGS[self.kind]
        self.seq = 0
        self.last_ts = 0
        self.acked = 0
        self.last_ack = 0.0
        self.inflight = inflight
        self.connected = False
        self.refused = None
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if secret:
            self.client.username_pw_set(self.device_id, secret)
        self.client.max_inflight_messages_set(inflight)
        # Messages beyond the in-flight window wait in paho's queue instead of failing.
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.connect(host, port, keepalive=keepalive)
        self.sock = self.client.socket()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.refused = str(reason_code)
        self.connected = True

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self.acked += 1
        self.last_ack = time.time()

    def window_open(self):
        # Our own window, so paho never queues beyond it and the publish loop stays honest.
        return self.qos == 0 or self.seq - self.acked < self.inflight

    def service(self):
        rc = self.client.loop_read()
        if rc == mqtt.MQTT_ERR_SUCCESS and self.client.want_write():
            rc = self.client.loop_write()
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"{self.device_id}: connection lost: {mqtt.error_string(rc)}")

    def publish_one(self):
        now = int(time.time() * 1000)
        # ts never repeats per device: storage dedups on (ts, device_id).
        ts = now if now > self.last_ts else self.last_ts + 1
        self.last_ts = ts
        payload = json.dumps(
            {"ts": ts, "seq": self.seq, "metrics": self.make(self.rng, self.seq)},
            separators=(",", ":"),
        )
        self.seq += 1
        info = self.client.publish(self.topic, payload, qos=self.qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"{self.device_id}: publish failed: {mqtt.error_string(info.rc)}")

    def stop(self):
        try:
            self.client.disconnect()
        except Exception:
            pass


def poll(pubs, by_sock, timeout):
    """Reads what the broker sent (CONNACKs, PUBACKs) on every connection that has data."""
    readable, _, _ = select.select(list(by_sock), [], [], timeout)
    for sock in readable:
        by_sock[sock].service()


def worker(args, devices, counts, rate, start_barrier, results, index):
    pubs = []
    try:
        for i, device in enumerate(devices):
            pubs.append(
                Publisher(args.host, args.port, device, args.qos, args.inflight, args.keepalive, args.seed + index * 100003 + i)
            )
        by_sock = {p.sock: p for p in pubs}
        deadline = time.time() + args.connect_timeout
        while not all(p.connected for p in pubs):
            if time.time() > deadline:
                missing = next(p.device_id for p in pubs if not p.connected)
                raise RuntimeError(f"{missing}: no CONNACK within {args.connect_timeout} s")
            poll(pubs, by_sock, 0.1)
        refused = [p for p in pubs if p.refused]
        if refused:
            raise RuntimeError(f"{refused[0].device_id}: connection refused: {refused[0].refused}")
        start_barrier.wait()
        sent = 0
        total = sum(counts)
        remaining = list(counts)
        t_first = time.time()
        next_misc = t_first + 1.0
        # Round-robin over this process's connections so every device advances evenly.
        while sent < total:
            progressed = False
            for i, p in enumerate(pubs):
                if remaining[i] and p.window_open():
                    p.publish_one()
                    remaining[i] -= 1
                    sent += 1
                    progressed = True
            # Block only when every window is full; otherwise just collect what has arrived.
            poll(pubs, by_sock, 0 if progressed else 0.05)
            now = time.time()
            if now >= next_misc:
                for p in pubs:
                    p.client.loop_misc()
                next_misc = now + 1.0
            if rate:
                ahead = sent / rate - (now - t_first)
                if ahead > 0:
                    time.sleep(ahead)
        deadline = time.time() + args.ack_timeout
        while sum(p.acked for p in pubs) < total and time.time() < deadline:
            poll(pubs, by_sock, 0.05)
        acked = sum(p.acked for p in pubs)
        t_last = max((p.last_ack for p in pubs), default=t_first)
        results.put({"index": index, "sent": sent, "acked": acked, "t_first": t_first, "t_last": t_last})
    except Exception as e:  # reported to the parent, which fails the run
        results.put({"index": index, "error": f"{type(e).__name__}: {e}"})
        try:
            start_barrier.abort()
        except Exception:
            pass
    finally:
        for p in pubs:
            p.stop()


def write_payloads(args, devices, per_conn):
    """Writes each device's readings, one JSON per line, to DIR/<device_id>.jsonl for a
    client that publishes lines (mosquitto_pub -l); prints one JSON line listing the files.
    ts starts at the current time and steps 1 ms per reading, unique and increasing per
    device; it runs ahead of the clock by as many ms as a device has readings."""
    try:
        os.makedirs(args.write_payloads, exist_ok=True)
    except OSError as e:
        raise InputError(f"--write-payloads {args.write_payloads}: {e.strerror}") from None
    start = int(time.time() * 1000)
    files = []
    for i, ((device_id, secret, kind), count) in enumerate(zip(devices, per_conn)):
        rng = random.Random(args.seed + i)
        make = READINGS[kind]
        path = os.path.join(args.write_payloads, f"{device_id}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for seq in range(count):
                f.write(json.dumps({"ts": start + seq, "seq": seq, "metrics": make(rng, seq)}, separators=(",", ":")))
                f.write("\n")
        files.append({"device_id": device_id, "secret": secret, "kind": kind, "path": path, "messages": count})
    print(json.dumps({"files": files}), flush=True)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker", required=True, help="HOST:PORT of the MQTT broker")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--devices", help="file of device_id,secret,kind lines, or an estate .toml (one connection per device)")
    src.add_argument("--synthetic", action="store_true", help="make up devices without credentials (broker allows anonymous)")
    ap.add_argument("--connections", type=int, required=True, help="number of connections (uses the first N devices)")
    ap.add_argument("--messages", type=int, required=True, help="total messages over all connections")
    ap.add_argument("--qos", type=int, choices=(0, 1), default=1)
    ap.add_argument("--rate", type=float, default=0.0, help="total messages per second (0: as fast as possible)")
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="worker processes (default: one per core)")
    ap.add_argument("--inflight", type=int, default=100, help="QoS 1 messages in flight per connection")
    ap.add_argument("--keepalive", type=int, default=60)
    ap.add_argument("--connect-timeout", type=float, default=30.0)
    ap.add_argument("--ack-timeout", type=float, default=120.0, help="seconds to wait for the last acks after the last publish")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write-payloads", metavar="DIR", help="write the readings to DIR/<device>.jsonl instead of publishing")
    args = ap.parse_args(argv)

    try:
        args.host, args.port = parse_broker(args.broker)
        if args.connections < 1:
            raise InputError(f"--connections {args.connections}: must be at least 1")
        if args.messages < 1:
            raise InputError(f"--messages {args.messages}: must be at least 1")
        if args.rate < 0:
            raise InputError(f"--rate {args.rate}: must not be negative")
        if args.processes < 1:
            raise InputError(f"--processes {args.processes}: must be at least 1")
        if not 1 <= args.inflight <= 65535:
            raise InputError(f"--inflight {args.inflight}: must be 1 to 65535")
        if args.keepalive < 1:
            raise InputError("--keepalive must be at least 1 (the contract refuses 0)")
        devices = read_devices(args.devices) if args.devices else synthetic_devices(args.connections)
        if len(devices) < args.connections:
            raise InputError(
                f"--connections {args.connections}: only {len(devices)} devices given, and one device id cannot hold two connections"
            )
    except InputError as e:
        print(f"paho_load: {e}", file=sys.stderr)
        return 2

    devices = devices[: args.connections]
    per_conn = [args.messages // args.connections + (1 if i < args.messages % args.connections else 0) for i in range(args.connections)]
    if args.write_payloads:
        try:
            return write_payloads(args, devices, per_conn)
        except InputError as e:
            print(f"paho_load: {e}", file=sys.stderr)
            return 2
    nproc = min(args.processes, args.connections)
    shares = [(devices[i::nproc], per_conn[i::nproc]) for i in range(nproc)]

    # A TERM from the harness becomes a normal exit, whose atexit handler stops the daemon
    # worker processes instead of leaving them publishing.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(nproc)
    results = ctx.Queue()
    procs = []
    for i, (devs, counts) in enumerate(shares):
        rate = args.rate * sum(counts) / args.messages if args.rate else 0.0
        p = ctx.Process(target=worker, args=(args, devs, counts, rate, barrier, results, i), daemon=True)
        p.start()
        procs.append(p)
    got = [results.get() for _ in procs]
    for p in procs:
        p.join()
    errors = [r["error"] for r in got if "error" in r]
    if errors:
        for e in errors:
            print(f"paho_load: {e}", file=sys.stderr)
        return 1
    sent = sum(r["sent"] for r in got)
    acked = sum(r["acked"] for r in got)
    t_first = min(r["t_first"] for r in got)
    t_last = max(r["t_last"] for r in got)
    secs = max(t_last - t_first, 1e-9)
    print(
        json.dumps(
            {
                "sent": sent,
                "acked": acked,
                "secs": round(secs, 3),
                "rate": round(acked / secs, 1),
                "qos": args.qos,
                "connections": args.connections,
                "processes": nproc,
                "start_unix": round(t_first, 3),
                "end_unix": round(t_last, 3),
            }
        ),
        flush=True,
    )
    return 0 if acked == sent == args.messages else 1


if __name__ == "__main__":
    sys.exit(main())
