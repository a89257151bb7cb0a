#!/usr/bin/env bash
# Creates bench/load/.venv with the pinned paho-mqtt; safe to run again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
if [ ! -x "$here/.venv/bin/python" ]; then
    "$python" -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$here/.venv/bin/python" -c 'import paho.mqtt; print("paho-mqtt", paho.mqtt.__version__)'
