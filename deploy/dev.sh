#!/usr/bin/env bash
# `make dev`: everything a near-real-time deployment has, locally — the API sandbox (as the tenants), the event
# gateway (webhook listener + B2C API connector + durable inbox) and Dagster with sensors and schedules on.
#
# The sandbox's tenants live in memory and start anew with every `make dev`, so the stack's own state starts anew
# with them: a warehouse, an inbox and a Dagster instance under $IDLINK_DEV_DIR (default data/dev/), emptied at
# each start. A warehouse built against an earlier sandbox would link identities to contacts that no longer
# exist or have been re-issued under other ids. (`make demo` keeps its warehouse at data/warehouse.duckdb.)
#
# Ctrl-C (or any process of the stack exiting) stops everything within 10 s: each process runs in its own process
# group, which gets SIGTERM, and whatever is left after 6 s gets SIGKILL.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
RUN_DIR=${IDLINK_DEV_DIR:-data/dev}
GATEWAY_PORT=${GATEWAY_PORT:-8787}
DAGSTER_PORT=${DAGSTER_PORT:-3000}
mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
# only what this script and the stack write there
(cd "$RUN_DIR" && rm -rf warehouse.duckdb warehouse.duckdb.* analyst.duckdb analyst.duckdb.* compliance.duckdb \
  compliance.duckdb.* inbox.sqlite3 inbox.sqlite3-* dagster_home dlt_pipelines dbt_target sandbox sandbox.env dev.env)
export WAREHOUSE_PATH=$RUN_DIR/warehouse.duckdb
export GATEWAY_INBOX_PATH=$RUN_DIR/inbox.sqlite3
export DAGSTER_HOME=$RUN_DIR/dagster_home
mkdir -p "$DAGSTER_HOME"
if [ -n "${DAGSTER_POSTGRES_URL:-}" ]; then cp deploy/dagster.postgres.yaml "$DAGSTER_HOME/dagster.yaml"
else cp deploy/dagster.yaml "$DAGSTER_HOME/dagster.yaml"; fi

pids=()
start() { setsid "$@" & pids+=($!); }
stop_all() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  local deadline=$((SECONDS + 6))  # by the clock, not by loop turns: a loaded machine slows the loop
  while [ "$SECONDS" -lt "$deadline" ]; do
    alive=0
    for pid in "${pids[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

start $BIN/python -m sandbox serve --size "${SANDBOX_SIZE:-1000}" --port "${SANDBOX_PORT:-0}" \
  --env-file "$RUN_DIR/sandbox.env" --state-dir "$RUN_DIR/sandbox" \
  --webhook-url "http://127.0.0.1:${GATEWAY_PORT}/webhooks/akamai"
for _ in $(seq 1 600); do [ -f "$RUN_DIR/sandbox.env" ] && break; sleep 0.2; done
[ -f "$RUN_DIR/sandbox.env" ] || { echo "sandbox did not start" >&2; exit 1; }
# KEY=VALUE lines; values may hold spaces, so export them verbatim instead of sourcing the file.
while IFS='=' read -r key value; do [[ -n "$key" && "$key" != \#* ]] && export "$key=$value"; done < "$RUN_DIR/sandbox.env"
export CONNECTOR_USERNAME=${CONNECTOR_USERNAME:-idlink-connector}
export CONNECTOR_PASSWORD=${CONNECTOR_PASSWORD:-dev-only-secret}
cp "$RUN_DIR/sandbox.env" "$RUN_DIR/dev.env"
{ echo "CONNECTOR_USERNAME=$CONNECTOR_USERNAME"; echo "CONNECTOR_PASSWORD=$CONNECTOR_PASSWORD";
  echo "GATEWAY_URL=http://127.0.0.1:${GATEWAY_PORT}"; echo "GATEWAY_INBOX_PATH=$GATEWAY_INBOX_PATH";
  echo "WAREHOUSE_PATH=$WAREHOUSE_PATH"; } >> "$RUN_DIR/dev.env"

start $BIN/python -m gateway serve --host 127.0.0.1 --port "$GATEWAY_PORT" --inbox "$GATEWAY_INBOX_PATH"
# The fast lane links new Akamai sign-ups within seconds; FAST_LANE=0 leaves them to the sensor-launched runs.
if [ "${FAST_LANE:-1}" != "0" ] && [ -n "${AKAMAI_BASE_URL:-}" ]; then
  start $BIN/python -m gateway fast-lane --inbox "$GATEWAY_INBOX_PATH"
fi

echo "sandbox: $SANDBOX_URL   gateway: http://127.0.0.1:${GATEWAY_PORT}   Dagster UI: http://127.0.0.1:${DAGSTER_PORT}"
echo "environment of this stack: $RUN_DIR/dev.env"
start $BIN/dagster dev -w workspace.yaml -h 127.0.0.1 -p "$DAGSTER_PORT"
wait -n "${pids[@]}"
