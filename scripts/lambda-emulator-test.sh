#!/usr/bin/env bash
# The three functions under a real Lambda runtime API: `cargo lambda watch` runs their
# bootstraps, `cargo lambda invoke` sends them the events in events/ (as `sam local invoke -e`
# would), against private Redis and Postgres. The job must complete, and each function must
# build its clients once per execution environment, not per invocation. import-fn also gets
# API Gateway events of the real size: a body at the limit (shared::api::MAX_BODY_BYTES) and one
# byte over it, as text and base64-encoded.
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
work=$(mktemp -d)
cleanup() {
  [ -n "${watch_pid:-}" ] && kill -- "-$watch_pid" 2>/dev/null || true
  [ -n "${watch2_pid:-}" ] && kill -- "-$watch2_pid" 2>/dev/null || true
  [ -n "${servers_pid:-}" ] && kill "$servers_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v cargo-lambda >/dev/null || python3 -m pip install --quiet cargo-lambda
cargo build -q -p leads-local -p import-fn -p drain-fn -p status-fn

"${CARGO_TARGET_DIR:-target}/debug/leads-local" servers >"$work/servers" 2>"$work/servers.log" &
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
# A CSV export in API Gateway's event, updating the seed's lead (onExisting=update) and adding one.
expect "import-fn accepts a CSV export with onExisting=update" "$(invoke import-fn import-csv-update.json)" '"statusCode":202'
expect "drain-fn stores and updates its leads" "$(invoke drain-fn drain-scheduled.json)" '"leadsStored":2'
expect "status-fn counts one created and one updated" "$(invoke status-fn status-csv-update.json)" '\"created\":1,\"updated\":1'
# Following an import (issue 15): the status event sent to the other paths, as API Gateway
# would route them (errors report and list to status-fn, cancel to import-fn).
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
for name, method, path, query in [
    ("errors", "GET", "/leads/import/unique-import-id/errors", "limit=10"),
    ("imports", "GET", "/leads/imports", "state=completed"),
    ("cancel", "POST", "/leads/import/unique-import-id/cancel", ""),
]:
    event = json.load(open("events/status.json"))
    event["rawPath"], event["rawQueryString"] = path, query
    event["requestContext"]["http"].update(path=path, method=method)
    event["routeKey"] = f"{method} {path}"
    json.dump(event, open(f"{work}/follow-{name}.json", "w"))
PY
follow() { timeout 180 cargo lambda invoke "$1" -P "$port" --data-file "$work/follow-$2.json"; }
expect "status-fn pages the errors report" "$(follow status-fn errors)" '\"errors\":[]'
expect "status-fn lists the imports" "$(follow status-fn imports)" '\"importId\":\"unique-import-id\"'
expect "import-fn refuses to cancel a finished import" "$(follow import-fn cancel)" '"statusCode":409'
# The body limit, with events of the real size. A body of MAX_BODY_BYTES, and one byte more, in
# an API Gateway v2 event (the seed event's headers and context), JSON-escaped as text and
# base64-encoded (isBase64Encoded, as API Gateway sends a type it takes as binary): each event is
# under Lambda's 6,291,456-byte payload limit, so on AWS the function gets it, and answers 202 at
# the limit and its own 413 over it. The emulator shows the function's answers, not Lambda's
# event limit: its runtime API passes on events of any size (the last case sends one over the
# limit, which Lambda would refuse before the function; the emulator delivers it). The limit
# itself is checked in-process against these sizes by the `limits` integration tests.
max_body=$((4 * 1024 * 1024)) # shared::api::MAX_BODY_BYTES
python3 - "$work" "$max_body" <<'PY'
import base64, json, sys
work, max_body = sys.argv[1], int(sys.argv[2])
template = json.load(open("events/import-seed.json"))
template["headers"].pop("content-length", None)
def body_of(size):
    # Ten leads, an ignored field of short strings (escaping adds about a quarter), then spaces.
    leads = [{"fullName": f"Lead {i}", "email": f"emulator{i}@example.com"} for i in range(10)]
    head = json.dumps({"createdBy": "emulator", "leads": leads}, separators=(",", ":"))[:-1]
    body, item, end = head + ',"extra":[', '"abcdef",', '"0"]}'
    body += item * ((size - len(body) - len(end)) // len(item)) + end
    return (body + " " * (size - len(body))).encode()
for name, size, encoded in [
    ("at-limit-text", max_body, False), ("over-limit-text", max_body + 1, False),
    ("at-limit-base64", max_body, True), ("over-limit-base64", max_body + 1, True),
    ("over-lambda-limit-base64", 4_800_000, True),
]:
    event, body = dict(template), body_of(size)
    event["body"] = base64.b64encode(body).decode() if encoded else body.decode()
    event["isBase64Encoded"] = encoded
    with open(f"{work}/{name}.json", "w") as f:
        json.dump(event, f, separators=(",", ":"))
PY
invoke_big() { timeout 180 cargo lambda invoke import-fn -P "$port" --data-file "$work/$1.json"; }
under_lambda_limit() { [ "$(stat -c %s "$work/$1.json")" -lt 6291456 ] && echo "under" || echo "over"; }
for encoding in text base64; do
  expect "a $max_body-byte body ($encoding) is an event under Lambda's limit" "$(under_lambda_limit "at-limit-$encoding")" "under"
  expect "import-fn reads a $max_body-byte body ($encoding)" "$(invoke_big "at-limit-$encoding")" '"statusCode":202'
  expect "one byte more ($encoding) is still an event under Lambda's limit" "$(under_lambda_limit "over-limit-$encoding")" "under"
  expect "import-fn answers it 413 body-too-large ($encoding)" "$(invoke_big "over-limit-$encoding")" 'problems/body-too-large'
done
expect "a 4.8 MB body in base64 is an event over Lambda's limit" "$(under_lambda_limit over-lambda-limit-base64)" "over"
expect "the emulator delivers it all the same (Lambda would not)" "$(invoke_big over-lambda-limit-base64)" '"statusCode":413'

inits=$(grep -ac 'clients built for this execution environment' "$work/watch.log" || true)
expect "clients built once per function (3 functions, 19 invocations)" "inits=$inits" "inits=3"

# Event-driven: a second emulator whose import-fn and drain-fn start drain-fn with the AWS
# SDK's asynchronous Invoke (InvocationType=Event), pointed at this emulator's own Invoke API
# (AWS_ENDPOINT_URL_LAMBDA). No scheduled event is sent from here on: only kicks start drains.
port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
kick_env="REDIS_URL=$REDIS_URL,DATABASE_URL=$DATABASE_URL,BLOCK_TIMEOUT=0,REDIS_KEY_PREFIX=kicked:"
kick_env+=",DRAIN_FUNCTION_NAME=drain-fn,AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:$port2"
kick_env+=",AWS_REGION=us-east-1,AWS_ACCESS_KEY_ID=emulator,AWS_SECRET_ACCESS_KEY=emulator"
kick_env+=",DRAIN_MAX_CONCURRENCY=2,DRAIN_ENTRIES_PER_DRAIN=2,BATCH_SIZE=10,DRAIN_READ_COUNT=2"
kick_env+=",DRAIN_PARALLEL_BATCHES=1,DRAIN_KICK_TIMEOUT_MS=2000"
setsid cargo lambda watch --ignore-changes --quiet -P "$port2" --env-var "$kick_env" >"$work/watch2.log" 2>&1 &
watch2_pid=$!
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port2") 2>/dev/null && break; sleep 0.1; done
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
for name, count in [("kicked-one", 1), ("kicked-backlog", 600)]:
    event = json.load(open("events/import-seed.json"))
    event["headers"].pop("content-length", None)
    leads = [{"fullName": f"Kicked {i}", "email": f"{name}{i}@example.com"} for i in range(count)]
    event["body"] = json.dumps({"importId": name, "createdBy": "emulator", "leads": leads})
    json.dump(event, open(f"{work}/import-{name}.json", "w"))
    status = json.load(open("events/status.json"))
    status["rawPath"] = status["rawPath"].replace("unique-import-id", name)
    status["requestContext"]["http"]["path"] = status["rawPath"]
    status["pathParameters"] = {"importId": name}
    json.dump(status, open(f"{work}/status-{name}.json", "w"))
PY
invoke2() { timeout 180 cargo lambda invoke "$1" -P "$port2" --data-file "$work/$2.json"; }
# Polls status-fn until the job completes (at most $2 tries of 0.2 s); the last answer.
completed_within() {
  local answer=""
  for _ in $(seq "$2"); do
    answer=$(invoke2 status-fn "status-$1")
    grep -qF '\"status\":\"completed\"' <<<"$answer" && break
    sleep 0.2
  done
  echo "$answer"
}
expect "import-fn accepts an import and kicks drain-fn" "$(invoke2 import-fn import-kicked-one)" '"statusCode":202'
expect "the kick alone completes it, with no scheduled event" "$(completed_within kicked-one 100)" '\"status\":\"completed\"'
expect "import-fn accepts a 600-lead import (60 entries)" "$(invoke2 import-fn import-kicked-backlog)" '"statusCode":202'
most=0
for _ in $(seq 600); do
  running=$(redis-cli -u "$REDIS_URL" ZCARD kicked:lead:drains 2>/dev/null || echo 0)
  [ "${running:-0}" -gt "$most" ] && most=$running
  grep -qF '\"status\":\"completed\"' <<<"$(invoke2 status-fn status-kicked-backlog)" && break
done
expect "the backlog completes through kicks and fan-out alone" "$(invoke2 status-fn status-kicked-backlog)" '\"status\":\"completed\"'
fanned=$(grep -a '"drain finished"' "$work/watch2.log" | grep -ac '"drains_started":[1-9]' || true)
expect "drains started more drains for the backlog" "fanned=$((fanned > 0 ? 1 : 0))" "fanned=1"
expect "never more than DRAIN_MAX_CONCURRENCY=2 drains at once" "most=$((most <= 2 ? 1 : 0))" "most=1"
kicked=$(grep -a '"drain finished"' "$work/watch2.log" | grep -ac '"generation":[1-9]' || true)
expect "drains ran as started by other drains (generation > 0)" "kicked=$((kicked > 0 ? 1 : 0))" "kicked=1"

echo "emulator: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || { echo "--- cargo lambda watch logs"; tail -30 "$work/watch.log"; tail -50 "$work/watch2.log"; exit 1; }
