#!/usr/bin/env bash
# Starts the benchmark's Node-RED baseline in the foreground:
#   mqtt in (devices/+/telemetry, QoS 1) -> reading to ILP row -> join (1000 rows or 200 ms)
#   -> http request POST http://QUESTDB/write
# Usage: start.sh --mqtt-port P --questdb-http HOST:PORT [--mqtt-host H] [--user-dir DIR]
# Prints "nodered ready" on stdout once the MQTT node is connected; Node-RED's own log goes
# to DIR/nodered.log (its warnings and errors are copied to stderr). The script execs
# Node-RED, so killing the script's pid stops it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

usage() { echo "usage: $0 --mqtt-port P --questdb-http HOST:PORT [--mqtt-host H] [--user-dir DIR]" >&2; exit 2; }
mqtt_host=127.0.0.1
mqtt_port=
questdb=
user_dir=
while [ $# -gt 0 ]; do
    case "$1" in
        --mqtt-port) mqtt_port="${2:-}"; shift 2 || usage ;;
        --mqtt-host) mqtt_host="${2:-}"; shift 2 || usage ;;
        --questdb-http) questdb="${2:-}"; shift 2 || usage ;;
        --user-dir) user_dir="${2:-}"; shift 2 || usage ;;
        -h|--help) usage ;;
        *) echo "start.sh: unknown argument $1" >&2; usage ;;
    esac
done
if ! [[ "$mqtt_port" =~ ^[0-9]+$ ]] || [ "$mqtt_port" -lt 1 ] || [ "$mqtt_port" -gt 65535 ]; then
    echo "start.sh: --mqtt-port '$mqtt_port' is not a port number 1-65535" >&2; exit 2
fi
if ! [[ "$questdb" =~ ^[A-Za-z0-9._-]+:[0-9]{1,5}$ ]]; then
    echo "start.sh: --questdb-http '$questdb' is not HOST:PORT" >&2; exit 2
fi
if ! [[ "$mqtt_host" =~ ^[A-Za-z0-9._-]+$ ]]; then
    echo "start.sh: --mqtt-host '$mqtt_host' is not a host name or address" >&2; exit 2
fi
red="$here/node_modules/node-red/red.js"
if [ ! -f "$red" ]; then
    echo "start.sh: $red is missing: run 'npm ci' in $here first" >&2; exit 1
fi
if [ -z "$user_dir" ]; then
    user_dir="$(mktemp -d -t nodered-bench.XXXXXX)"
fi
mkdir -p "$user_dir"
cp "$here/settings.js" "$user_dir/settings.js"
MQTT_HOST="$mqtt_host" MQTT_PORT="$mqtt_port" QUESTDB_HTTP="$questdb" node -e '
const fs = require("fs");
const [tpl, fn, out] = process.argv.slice(1);
const flow = fs.readFileSync(tpl, "utf8")
    .replace("@MQTT_HOST@", process.env.MQTT_HOST)
    .replace("@MQTT_PORT@", process.env.MQTT_PORT)
    .replace("@QUESTDB_HTTP@", process.env.QUESTDB_HTTP)
    .replace("@FUNC@", JSON.stringify(fs.readFileSync(fn, "utf8")));
fs.writeFileSync(out, JSON.stringify(JSON.parse(flow), null, 2));
' "$here/flow.template.json" "$here/to-ilp.js" "$user_dir/flows.json"

log="$user_dir/nodered.log"
: > "$log"
echo "start.sh: Node-RED user dir $user_dir, log $log" >&2
# The watcher follows the log until Node-RED (this pid, after exec) exits.
tail -n +1 -F --pid=$$ "$log" 2>/dev/null | {
    ready=0
    while IFS= read -r line; do
        case "$line" in
            *"[mqtt-broker:"*"] Connected to broker"*)
                if [ "$ready" = 0 ]; then echo "nodered ready"; ready=1; fi ;;
            *"[warn]"*|*"[error]"*) echo "$line" >&2 ;;
        esac
    done
} &
exec node "$red" --userDir "$user_dir" --settings "$user_dir/settings.js" "$user_dir/flows.json" >>"$log" 2>&1
