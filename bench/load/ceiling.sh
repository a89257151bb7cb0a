#!/usr/bin/env bash
# The paho load generator's own ceiling on this machine: paho_load.py -> Mosquitto -> one
# counting subscriber (mosquitto_sub -C N, output discarded), nothing stored.
# Usage: ceiling.sh [--messages N] [--connections N] [--qos 0|1] [--client paho|mosquitto_pub]
# Prints one JSON line:
#   {"pipeline":"CLIENT->mosquitto->mosquitto_sub","messages":..,"received":..,"secs":..,"rate":..,
#    "publish_secs":..,"publish_rate":..}
# secs runs from the first publish to the subscriber's last message. Stops what it starts.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
messages=200000
connections=16
qos=1
client=paho
usage() { echo "usage: $0 [--messages N] [--connections N] [--qos 0|1] [--client paho|mosquitto_pub]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --messages) messages="${2:-}"; shift 2 || usage ;;
        --connections) connections="${2:-}"; shift 2 || usage ;;
        --qos) qos="${2:-}"; shift 2 || usage ;;
        --client) client="${2:-}"; shift 2 || usage ;;
        *) echo "ceiling.sh: unknown argument $1" >&2; usage ;;
    esac
done
[[ "$messages" =~ ^[0-9]+$ ]] && [ "$messages" -gt 0 ] || { echo "ceiling.sh: --messages '$messages' must be a positive integer" >&2; exit 2; }
[[ "$connections" =~ ^[0-9]+$ ]] && [ "$connections" -gt 0 ] || { echo "ceiling.sh: --connections '$connections' must be a positive integer" >&2; exit 2; }
[[ "$qos" =~ ^[01]$ ]] || { echo "ceiling.sh: --qos '$qos' must be 0 or 1" >&2; exit 2; }
case "$client" in
    paho) load=("$here/.venv/bin/python" "$here/paho_load.py") ;;
    mosquitto_pub) load=("$here/mosquitto_pub_load.sh") ;;
    *) echo "ceiling.sh: --client '$client' must be paho or mosquitto_pub" >&2; exit 2 ;;
esac
mosquitto_bin="${MOSQUITTO:-/usr/sbin/mosquitto}"
[ -x "$mosquitto_bin" ] || { echo "ceiling.sh: $mosquitto_bin not found (apt-get install mosquitto)" >&2; exit 1; }
command -v mosquitto_sub >/dev/null || { echo "ceiling.sh: mosquitto_sub not on PATH (apt-get install mosquitto-clients)" >&2; exit 1; }
[ -x "$here/.venv/bin/python" ] || "$here/setup.sh" >&2

root="$(mktemp -d -t paho-ceiling.XXXXXX)"
pids=()
cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$root"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat > "$root/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
log_dest stderr
EOF
"$mosquitto_bin" -c "$root/mosquitto.conf" 2>"$root/mosquitto.log" &
pids+=($!)
deadline=$(($(date +%s) + 30))
until mosquitto_pub -p "$port" -t bench/ping -m x -q 1 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "ceiling.sh: Mosquitto not answering on $port" >&2; exit 1; }
    sleep 0.05
done

# The subscriber prints one receive time per message (%U), so its readiness (a retained
# marker arrives first), its count and the time of the last message are all read from
# its output.
mosquitto_pub -p "$port" -t devices/ready/telemetry -m ready -r -q 1
mosquitto_sub -p "$port" -q "$qos" -t 'devices/+/telemetry' -C $((messages + 1)) -F '%U' >"$root/sub.out" &
sub_pid=$!
pids+=($sub_pid)
deadline=$(($(date +%s) + 30))
until [ -s "$root/sub.out" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "ceiling.sh: subscriber did not start" >&2; exit 1; }
    sleep 0.05
done

"${load[@]}" --broker "127.0.0.1:$port" --synthetic \
    --connections "$connections" --messages "$messages" --qos "$qos" >"$root/load.json"
deadline=$(($(date +%s) + 120))
while kill -0 "$sub_pid" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "ceiling.sh: subscriber got $(($(wc -l <"$root/sub.out") - 1)) of $messages" >&2; exit 1; }
    sleep 0.05
done
received=$(($(wc -l <"$root/sub.out") - 1))
python3 - "$messages" "$received" "$(tail -n 1 "$root/sub.out")" "$(cat "$root/load.json")" "$client" <<'EOF'
import json, sys
messages, received, end, load, client = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
secs = end - load["start_unix"]
print(json.dumps({"pipeline": f"{client}->mosquitto->mosquitto_sub", "messages": messages, "received": received,
                  "secs": round(secs, 3), "rate": round(received / secs, 1),
                  "publish_secs": load["secs"], "publish_rate": load["rate"], "qos": load["qos"],
                  "connections": load["connections"]}))
EOF
