#!/usr/bin/env bash
# A second third-party load client, faster than paho: Debian's mosquitto_pub (C, libmosquitto)
# in line mode, one process and connection per device. The readings are the same as
# paho_load.py's, written to files before the clock starts (paho_load.py --write-payloads),
# so the figure is the client's and the broker's, not the payload generator's.
# Usage: mosquitto_pub_load.sh --broker HOST:PORT (--devices FILE | --synthetic)
#            --connections N --messages N [--qos 0|1]
# Prints one JSON line:
#   {"client":"mosquitto_pub","messages":..,"secs":..,"rate":..,"qos":..,"connections":..,
#    "start_unix":..,"end_unix":..}
# secs runs from starting the publishers to the last one exiting; mosquitto_pub -l exits
# at the end of its input only once every QoS 1 message is acknowledged. Exit status 1 if
# any publisher failed (named on stderr), 2 on a bad argument.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
broker=
devices=
synthetic=0
connections=
messages=
qos=1
usage() { echo "usage: $0 --broker HOST:PORT (--devices FILE | --synthetic) --connections N --messages N [--qos 0|1]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --broker) broker="${2:-}"; shift 2 || usage ;;
        --devices) devices="${2:-}"; shift 2 || usage ;;
        --synthetic) synthetic=1; shift ;;
        --connections) connections="${2:-}"; shift 2 || usage ;;
        --messages) messages="${2:-}"; shift 2 || usage ;;
        --qos) qos="${2:-}"; shift 2 || usage ;;
        -h|--help) usage ;;
        *) echo "mosquitto_pub_load.sh: unknown argument $1" >&2; usage ;;
    esac
done
[[ "$broker" =~ ^([A-Za-z0-9._-]+):([0-9]{1,5})$ ]] || { echo "mosquitto_pub_load.sh: --broker '$broker' is not HOST:PORT" >&2; exit 2; }
host="${BASH_REMATCH[1]}"
port="${BASH_REMATCH[2]}"
[[ "$qos" =~ ^[01]$ ]] || { echo "mosquitto_pub_load.sh: --qos '$qos' must be 0 or 1" >&2; exit 2; }
if [ "$synthetic" = 1 ] && [ -n "$devices" ]; then echo "mosquitto_pub_load.sh: give --devices or --synthetic, not both" >&2; exit 2; fi
if [ "$synthetic" = 0 ] && [ -z "$devices" ]; then echo "mosquitto_pub_load.sh: give --devices FILE or --synthetic" >&2; exit 2; fi
command -v mosquitto_pub >/dev/null || { echo "mosquitto_pub_load.sh: mosquitto_pub not on PATH (apt-get install mosquitto-clients)" >&2; exit 1; }
[ -x "$here/.venv/bin/python" ] || "$here/setup.sh" >&2

dir="$(mktemp -d -t mosquitto-pub-load.XXXXXX)"
pids=()
cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

source_args=(--synthetic)
[ -n "$devices" ] && source_args=(--devices "$devices")
# paho_load.py validates the arguments and the devices file and writes the payloads.
"$here/.venv/bin/python" "$here/paho_load.py" --broker "$broker" "${source_args[@]}" \
    --connections "${connections:-0}" --messages "${messages:-0}" --write-payloads "$dir/payloads" >"$dir/files.json"

# One line per device: id, secret, path, split on the unit separator (tabs are whitespace
# to `read` and would merge around an empty secret).
jq -r '.files[] | [.device_id, .secret, .path] | join("\u001f")' "$dir/files.json" >"$dir/files.tsv"
start="$(date +%s.%N)"
while IFS=$'\x1f' read -r id secret path; do
    auth=()
    [ -n "$secret" ] && auth=(-u "$id" -P "$secret")
    mosquitto_pub -h "$host" -p "$port" -V mqttv311 -k 60 -i "$id" "${auth[@]}" -q "$qos" \
        -t "devices/$id/telemetry" -l <"$path" 2>"$dir/$id.err" &
    pids+=($!)
done <"$dir/files.tsv"
failed=()
i=0
while IFS=$'\x1f' read -r id _ _; do
    if ! wait "${pids[$i]}"; then failed+=("$id: $(tr '\n' ' ' <"$dir/$id.err")"); fi
    i=$((i + 1))
done <"$dir/files.tsv"
end="$(date +%s.%N)"
pids=()
for f in "${failed[@]}"; do echo "mosquitto_pub_load.sh: publisher $f failed" >&2; done
python3 - "$messages" "$start" "$end" "$qos" "$connections" "${#failed[@]}" <<'EOF'
import json, sys
messages, start, end, qos, conns, failed = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
secs = end - start
print(json.dumps({"client": "mosquitto_pub", "messages": messages, "secs": round(secs, 3), "rate": round(messages / secs, 1),
                  "qos": qos, "connections": conns, "failed_connections": failed,
                  "start_unix": round(start, 3), "end_unix": round(end, 3)}))
EOF
[ "${#failed[@]}" = 0 ]
