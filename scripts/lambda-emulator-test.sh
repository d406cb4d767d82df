#!/usr/bin/env bash
# The three functions under a real Lambda runtime API: `cargo lambda watch` runs their
# bootstraps, `cargo lambda invoke` sends them the events in events/ (as `sam local invoke -e`
# would), against private Redis and Postgres. The job must complete, and each function must
# build its clients once per execution environment, not per invocation.
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
work=$(mktemp -d)
cleanup() {
  [ -n "${watch_pid:-}" ] && kill -- "-$watch_pid" 2>/dev/null || true
  [ -n "${servers_pid:-}" ] && kill "$servers_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v cargo-lambda >/dev/null || python3 -m pip install --quiet cargo-lambda
cargo build -q -p leads-local -p import-fn -p drain-fn -p status-fn

./target/debug/leads-local servers >"$work/servers" 2>"$work/servers.log" &
servers_pid=$!
for _ in $(seq 600); do grep -q '^ready' "$work/servers" && break; sleep 0.1; done
grep -q '^ready' "$work/servers" || { echo "private servers did not start"; cat "$work/servers.log"; exit 1; }
REDIS_URL=$(sed -n 's/^REDIS_URL=//p' "$work/servers")
DATABASE_URL=$(sed -n 's/^DATABASE_URL=//p' "$work/servers")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
setsid cargo lambda watch --ignore-changes --quiet -P "$port" \
  --env-var "REDIS_URL=$REDIS_URL,DATABASE_URL=$DATABASE_URL,BLOCK_TIMEOUT=0" >"$work/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

invoke() { timeout 180 cargo lambda invoke "$1" -P "$port" --data-file "events/$2"; }
expect() { # name, output, fixed string it must contain
  if grep -qF -- "$3" <<<"$2"; then passed=$((passed + 1)); echo "ok   $1";
  else failed=$((failed + 1)); echo "FAIL $1: expected $3 in: $2"; fi
}

expect "import-fn accepts the seed request" "$(invoke import-fn import-seed.json)" '"statusCode":202'
expect "status-fn reports pending" "$(invoke status-fn status.json)" '\"status\":\"pending\"'
expect "drain-fn stores the lead" "$(invoke drain-fn drain-scheduled.json)" '"leadsStored":1'
expect "status-fn reports completed" "$(invoke status-fn status.json)" '\"status\":\"completed\"'
expect "import-fn answers a retry with 200" "$(invoke import-fn import-seed.json)" '"statusCode":200'
expect "import-fn refuses malformed JSON with a problem" "$(invoke import-fn import-bad-json.json)" '"statusCode":400'
expect "import-fn refuses a form-encoded body" "$(invoke import-fn import-form-encoded.json)" '"statusCode":415'
expect "drain-fn runs again on the same environment" "$(invoke drain-fn drain-scheduled.json)" '"entries":0'
inits=$(grep -ac 'clients built for this execution environment' "$work/watch.log" || true)
expect "clients built once per function (3 functions, 8 invocations)" "inits=$inits" "inits=3"

echo "emulator: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || { echo "--- cargo lambda watch log"; tail -50 "$work/watch.log"; exit 1; }
