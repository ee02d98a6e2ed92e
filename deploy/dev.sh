#!/usr/bin/env bash
# `make dev`: everything a near-real-time deployment has, locally — the API sandbox (as the tenants), the event
# gateway (webhook listener + B2C API connector + durable inbox) and Dagster with sensors and schedules on.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
RUN_DIR=data/dev
GATEWAY_PORT=${GATEWAY_PORT:-8787}
DAGSTER_PORT=${DAGSTER_PORT:-3000}
mkdir -p "$RUN_DIR" "$DAGSTER_HOME"
rm -f "$RUN_DIR/sandbox.env"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

$BIN/python -m sandbox serve --size "${SANDBOX_SIZE:-1000}" --port "${SANDBOX_PORT:-0}" \
  --env-file "$RUN_DIR/sandbox.env" --state-dir "$RUN_DIR/sandbox" \
  --webhook-url "http://127.0.0.1:${GATEWAY_PORT}/webhooks/akamai" &
pids+=($!)
for _ in $(seq 1 600); do [ -f "$RUN_DIR/sandbox.env" ] && break; sleep 0.2; done
[ -f "$RUN_DIR/sandbox.env" ] || { echo "sandbox did not start" >&2; exit 1; }
# KEY=VALUE lines; values may hold spaces, so export them verbatim instead of sourcing the file.
while IFS='=' read -r key value; do [[ -n "$key" && "$key" != \#* ]] && export "$key=$value"; done < "$RUN_DIR/sandbox.env"
export CONNECTOR_USERNAME=${CONNECTOR_USERNAME:-idlink-connector}
export CONNECTOR_PASSWORD=${CONNECTOR_PASSWORD:-dev-only-secret}
export GATEWAY_INBOX_PATH=${GATEWAY_INBOX_PATH:-$PWD/data/inbox.sqlite3}
cp "$RUN_DIR/sandbox.env" "$RUN_DIR/dev.env"
{ echo "CONNECTOR_USERNAME=$CONNECTOR_USERNAME"; echo "CONNECTOR_PASSWORD=$CONNECTOR_PASSWORD";
  echo "GATEWAY_URL=http://127.0.0.1:${GATEWAY_PORT}"; echo "GATEWAY_INBOX_PATH=$GATEWAY_INBOX_PATH"; } >> "$RUN_DIR/dev.env"

$BIN/python -m gateway serve --host 127.0.0.1 --port "$GATEWAY_PORT" --inbox "$GATEWAY_INBOX_PATH" &
pids+=($!)
# The fast lane links new Akamai sign-ups within seconds; FAST_LANE=0 leaves them to the sensor-launched runs.
if [ "${FAST_LANE:-1}" != "0" ] && [ -n "${AKAMAI_BASE_URL:-}" ]; then
  $BIN/python -m gateway fast-lane --inbox "$GATEWAY_INBOX_PATH" &
  pids+=($!)
fi

echo "sandbox: $SANDBOX_URL   gateway: http://127.0.0.1:${GATEWAY_PORT}   Dagster UI: http://127.0.0.1:${DAGSTER_PORT}"
echo "environment of this stack: $RUN_DIR/dev.env"
$BIN/dagster dev -w workspace.yaml -h 127.0.0.1 -p "$DAGSTER_PORT" &
pids+=($!)
wait -n "${pids[@]}"
