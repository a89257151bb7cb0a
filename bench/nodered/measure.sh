#!/usr/bin/env bash
# End-to-end throughput of the baseline a user would build instead of Steward:
#   load client (paho_load.py or mosquitto_pub_load.sh) -> Mosquitto -> Node-RED (start.sh's flow) -> QuestDB (ILP over HTTP)
# Starts Mosquitto and QuestDB on free ports in a temporary root, starts Node-RED, checks the
# pipeline with one probe reading, warms it up, then drives --messages readings and polls
# `SELECT count() FROM nodered_telemetry` until every one is visible. The clock runs from
# the first publish (the load client's start_unix) to the poll that saw the last row.
# Prints one JSON line:
#   {"pipeline":"mosquitto+node-red","messages":..,"rows":..,"secs":..,"rate":..}
# Every process it starts is stopped on exit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
load_dir="$(cd "$here/../load" && pwd)"

messages=200000
connections=16
qos=1
rate=0
warmup=20000
heap=512m
jar="${QUESTDB_JAR:-$HOME/.cache/steward/questdb-9.3.4.jar}"
stall_secs=30
keep=0
client=paho
usage() {
    cat >&2 <<EOF
usage: $0 [--messages N] [--connections N] [--qos 0|1] [--rate MSG_PER_S] [--warmup N]
          [--heap 512m] [--jar questdb.jar] [--stall-secs S] [--client paho|mosquitto_pub] [--keep]
--client picks the load generator (bench/load/paho_load.py or mosquitto_pub_load.sh; the
latter ignores --rate).
--keep leaves the temporary root (logs, QuestDB data) in place and prints its path.
EOF
    exit 2
}
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
while [ $# -gt 0 ]; do
    case "$1" in
        --messages) messages="${2:-}"; shift 2 || usage ;;
        --connections) connections="${2:-}"; shift 2 || usage ;;
        --qos) qos="${2:-}"; shift 2 || usage ;;
        --rate) rate="${2:-}"; shift 2 || usage ;;
        --warmup) warmup="${2:-}"; shift 2 || usage ;;
        --heap) heap="${2:-}"; shift 2 || usage ;;
        --jar) jar="${2:-}"; shift 2 || usage ;;
        --stall-secs) stall_secs="${2:-}"; shift 2 || usage ;;
        --client) client="${2:-}"; shift 2 || usage ;;
        --keep) keep=1; shift ;;
        -h|--help) usage ;;
        *) echo "measure.sh: unknown argument $1" >&2; usage ;;
    esac
done
is_uint "$messages" && [ "$messages" -gt 0 ] || { echo "measure.sh: --messages '$messages' must be a positive integer" >&2; exit 2; }
is_uint "$connections" && [ "$connections" -gt 0 ] || { echo "measure.sh: --connections '$connections' must be a positive integer" >&2; exit 2; }
[[ "$qos" =~ ^[01]$ ]] || { echo "measure.sh: --qos '$qos' must be 0 or 1" >&2; exit 2; }
is_uint "$rate" || { echo "measure.sh: --rate '$rate' must be a non-negative integer" >&2; exit 2; }
is_uint "$warmup" || { echo "measure.sh: --warmup '$warmup' must be a non-negative integer" >&2; exit 2; }
is_uint "$stall_secs" && [ "$stall_secs" -gt 0 ] || { echo "measure.sh: --stall-secs '$stall_secs' must be a positive integer" >&2; exit 2; }
[[ "$client" =~ ^(paho|mosquitto_pub)$ ]] || { echo "measure.sh: --client '$client' must be paho or mosquitto_pub" >&2; exit 2; }
[[ "$heap" =~ ^[0-9]+[kmgKMG]$ ]] || { echo "measure.sh: --heap '$heap' must look like 512m" >&2; exit 2; }
[ -f "$jar" ] || { echo "measure.sh: QuestDB jar $jar not found (set --jar or QUESTDB_JAR)" >&2; exit 1; }
mosquitto_bin="${MOSQUITTO:-/usr/sbin/mosquitto}"
[ -x "$mosquitto_bin" ] || { echo "measure.sh: $mosquitto_bin not found (apt-get install mosquitto)" >&2; exit 1; }
for tool in java node curl jq mosquitto_pub python3; do
    command -v "$tool" >/dev/null || { echo "measure.sh: $tool is not on PATH" >&2; exit 1; }
done
if [ ! -f "$here/node_modules/node-red/red.js" ]; then
    echo "measure.sh: installing Node-RED (npm ci) in $here" >&2
    (cd "$here" && npm ci --ignore-scripts --no-audit --no-fund >&2)
fi
if [ ! -x "$load_dir/.venv/bin/python" ]; then
    "$load_dir/setup.sh" >&2
fi

root="$(mktemp -d -t nodered-measure.XXXXXX)"
pids=()
cleanup() {
    local rc=$?
    if [ -n "${load_pid:-}" ]; then kill "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; fi
    # Stop in reverse order of start; each pid is one this script started.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[$i]}" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$keep" = 1 ]; then
        echo "measure.sh: kept $root" >&2
    else
        rm -rf "$root"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 50 ms.
wait_for() {
    local limit="$1" what="$2"; shift 2
    local deadline=$(($(date +%s) + limit))
    until "$@"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "measure.sh: $what not within ${limit}s" >&2
            return 1
        fi
        sleep 0.05
    done
}

mqtt_port="$(free_port)"
cat > "$root/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence false
# Unlimited queue for the Node-RED subscriber: with the default (1000) Mosquitto drops
# QoS 1 messages once Node-RED lags, and the run would measure loss, not throughput.
max_queued_messages 0
log_dest stderr
EOF
"$mosquitto_bin" -c "$root/mosquitto.conf" 2>"$root/mosquitto.log" &
pids+=($!)

qdb_http="$(free_port)"
mkdir -p "$root/questdb"
QDB_HTTP_NET_BIND_TO="127.0.0.1:$qdb_http" \
QDB_PG_NET_BIND_TO="127.0.0.1:$(free_port)" \
QDB_LINE_TCP_NET_BIND_TO="127.0.0.1:$(free_port)" \
QDB_HTTP_MIN_NET_BIND_TO="127.0.0.1:$(free_port)" \
QDB_LINE_UDP_ENABLED=false \
QDB_TELEMETRY_ENABLED=false \
QDB_SHARED_WORKER_COUNT=2 \
    java "-Xmx$heap" -XX:+UseParallelGC -p "$jar" -m io.questdb/io.questdb.ServerMain -d "$root/questdb" \
    >"$root/questdb.log" 2>&1 </dev/null &
pids+=($!)

sql() { curl -sf -G "http://127.0.0.1:$qdb_http/exec" --data-urlencode "query=$1"; }
mosquitto_up() { mosquitto_pub -p "$mqtt_port" -t bench/ping -m x -q 1 2>/dev/null; }
questdb_up() { sql "SELECT 1" >/dev/null 2>&1; }
wait_for 30 "Mosquitto answering on port $mqtt_port" mosquitto_up
wait_for 90 "QuestDB answering on port $qdb_http (log: $root/questdb.log)" questdb_up

"$here/start.sh" --mqtt-port "$mqtt_port" --questdb-http "127.0.0.1:$qdb_http" --user-dir "$root/nodered" \
    >"$root/nodered.ready" 2>"$root/nodered.stderr" &
pids+=($!)
nodered_ready() { grep -qx "nodered ready" "$root/nodered.ready"; }
wait_for 60 "Node-RED connected to Mosquitto (log: $root/nodered/nodered.log)" nodered_ready

# Rows of devices other than the probe; 0 while the table does not exist yet.
row_count() {
    local n
    n="$(sql "SELECT count() FROM nodered_telemetry WHERE device_id <> 'probe'" 2>/dev/null | jq -r '.dataset[0][0] // empty' 2>/dev/null || true)"
    echo "${n:-0}"
}
probe_seen() {
    [ "$(sql "SELECT count() FROM nodered_telemetry WHERE device_id = 'probe'" 2>/dev/null | jq -r '.dataset[0][0] // 0' 2>/dev/null || echo 0)" -ge 1 ]
}
# The probe proves the subscription is active and the whole path writes (and creates the
# table) before any load is sent: "Connected to broker" precedes the SUBACK.
ts_ms=$(($(date +%s%N) / 1000000))
probe_sent() {
    mosquitto_pub -p "$mqtt_port" -q 1 -t devices/probe/telemetry \
        -m "{\"ts\":$ts_ms,\"seq\":0,\"metrics\":{\"temperature_c\":21.5,\"alarm\":false}}" 2>/dev/null
    ts_ms=$((ts_ms + 1))
    wait_for 2 "probe reading in QuestDB" probe_seen 2>/dev/null
}
wait_for 60 "probe reading through Mosquitto -> Node-RED -> QuestDB" probe_sent

# Runs in the background and is waited for, so a TERM to this script is handled at once
# (bash defers traps until a foreground child ends); cleanup stops it like the servers.
load_pid=
load() {
    if [ "$client" = paho ]; then
        "$load_dir/.venv/bin/python" "$load_dir/paho_load.py" --broker "127.0.0.1:$mqtt_port" --synthetic \
            --connections "$connections" --qos "$qos" --rate "$rate" "$@" &
    else
        "$load_dir/mosquitto_pub_load.sh" --broker "127.0.0.1:$mqtt_port" --synthetic \
            --connections "$connections" --qos "$qos" "$@" &
    fi
    load_pid=$!
    local rc=0
    wait "$load_pid" || rc=$?
    load_pid=
    return "$rc"
}
# wait_rows TARGET: polls until TARGET rows are visible or the count has not moved for
# stall_secs; sets rows and t_rows (the time of the poll that first saw the final count).
wait_rows() {
    local target="$1" last=-1 last_change
    last_change="$(date +%s)"
    while true; do
        rows="$(row_count)"
        t_rows="$(now)"
        [ "$rows" -ge "$target" ] && return 0
        if [ "$rows" != "$last" ]; then
            last="$rows"
            last_change="$(date +%s)"
        elif [ $(($(date +%s) - last_change)) -ge "$stall_secs" ]; then
            echo "measure.sh: row count stuck at $rows of $target for ${stall_secs}s" >&2
            return 1
        fi
        sleep 0.05
    done
}

if [ "$warmup" -gt 0 ]; then
    # Node-RED's and QuestDB's JITs compile during the first seconds; the hub's bench
    # warms up too.
    load --messages "$warmup" >"$root/warmup.json"
    wait_rows "$warmup"
fi
base="$(row_count)"
load --messages "$messages" >"$root/load.json" || echo "measure.sh: load generator reported missing acks: $(cat "$root/load.json")" >&2
start_unix="$(jq -r .start_unix "$root/load.json")"
stalled=0
wait_rows $((base + messages)) || stalled=1
rows=$((rows - base))
# Kept for inspection with --keep: the table the flow created, and a few rows.
sql "SHOW COLUMNS FROM nodered_telemetry" >"$root/columns.json" 2>/dev/null || true
sql "SELECT * FROM nodered_telemetry WHERE device_id <> 'probe' LIMIT -5" >"$root/sample.json" 2>/dev/null || true
python3 - "$messages" "$rows" "$start_unix" "$t_rows" "$(cat "$root/load.json")" "$client" <<'EOF'
import json, sys
messages, rows, start, end, load, client = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5]), sys.argv[6]
secs = end - start
print(json.dumps({"pipeline": "mosquitto+node-red", "messages": messages, "rows": rows,
                  "secs": round(secs, 3), "rate": round(rows / secs, 1),
                  "publish_secs": load["secs"], "client": client, "qos": load["qos"],
                  "connections": load["connections"]}))
EOF
[ "$stalled" = 0 ]
