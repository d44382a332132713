#!/usr/bin/env bash
# Live mode at tenant scale: a full import through `roster fake-graph` serving the reference
# tenant with Graph's latency and resource-unit budget (8,000 units per 10 s for a tenant of
# over 500 users; a user list costs 2 units, members 3, transitiveMembers 5, $select one less).
#
#   bench/live.sh [--users N] [--groups M] [--latency-ms 50] [--ru 8000] [--work DIR] [--roster BIN]
#
# --roster: measure that build of roster (an A/B) instead of building this checkout's.
set -euo pipefail
users=100000 groups=10000 latency=50 ru=8000 work="" given=""
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --groups) groups=$2; shift 2 ;;
    --latency-ms) latency=$2; shift 2 ;;
    --ru) ru=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --roster) given=$(realpath "$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
if [ -n "$given" ]; then
  roster=$given
else
  cargo build --release -q -p roster
  roster=$PWD/target/release/roster
fi
work=${work:-$(mktemp -d)}
mkdir -p "$work"
[ -f "$work/tenant-$users.json" ] || "$roster" fixture generate --users "$users" --groups "$groups" --seed 1 \
  --out "$work/tenant-$users.json" --server-out "$work/server-$users.json" --linked 0.5 2>/dev/null
secret=bench-secret-$$
"$roster" fake-graph --tenant "$work/tenant-$users.json" --latency-ms "$latency" --ru-per-10s "$ru" \
  --client-secret "$secret" > "$work/fake.url" 2>/dev/null &
fake=$!
trap 'kill $fake 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s "$work/fake.url" ] && break; sleep 0.1; done
url=$(head -n 1 "$work/fake.url")
export ROSTER_STORE=$work/live-store ROSTER_CLIENT_SECRET=$secret
rm -rf "$ROSTER_STORE"
"$roster" org add live --tenant 7d3c2b1a-0f9e-4d8c-8b7a-6f5e4d3c2b1a --auth client-secret \
  --client-id 0b9f8e7d-6c5b-4a39-8281-706f5e4d3c2b --graph-url "$url" --login-url "$url" >/dev/null
"$roster" server load "$work/server-$users.json" 2>/dev/null
before=$(curl -s "$url/_fake/stats")
start=$(date +%s.%N)
/usr/bin/time -f "%e s, peak RSS %M KB" -o "$work/time.txt" "$roster" import live --select-all --check-deleted \
  --on-deleted disable --max-deletions 1000000 --json > "$work/import.json" 2> "$work/import.err" || true
end=$(date +%s.%N)
after=$(curl -s "$url/_fake/stats")
echo "machine: $(nproc) cores; tenant $users users, $groups groups; fake-graph --latency-ms $latency --ru-per-10s $ru"
echo "import: $(tail -n 1 "$work/time.txt")"
grep -h "Read from Graph" "$work/import.err" || true
python3 - "$before" "$after" "$start" "$end" <<'PY'
import json, sys
b, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
secs = float(sys.argv[4]) - float(sys.argv[3])
d = {k: a[k] - b[k] for k in a}
print(f"fake-graph saw: {d['graphRequests']} Graph requests ({d['httpRequests']} HTTP), {d['resourceUnits']} resource units, {d['throttled']} answered 429")
print(f"wall time {secs:.1f} s; resource units spent per second: {d['resourceUnits'] / secs:.0f}")
PY
python3 -c "import json,sys; print('summary:', json.load(open(sys.argv[1]))['summary'])" "$work/import.json"

# Incremental: a sync with nothing changed, then one after 1 % of the users changed (their
# department), each reading only the changes through Graph delta.
measure() { # $1: label
  local before after start end
  before=$(curl -s "$url/_fake/stats")
  start=$(date +%s.%N)
  /usr/bin/time -f "%e s, peak RSS %M KB" -o "$work/time.txt" "$roster" sync live --json \
    > "$work/sync.json" 2> "$work/sync.err" || true
  end=$(date +%s.%N)
  after=$(curl -s "$url/_fake/stats")
  python3 - "$1" "$before" "$after" "$start" "$end" "$(tail -n 1 "$work/time.txt")" "$work/sync.err" <<'PY'
import json, sys
label, b, a = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
secs = float(sys.argv[5]) - float(sys.argv[4])
d = {k: a[k] - b[k] for k in a}
line = open(sys.argv[7]).read().strip().splitlines()[-1:]
print(f"{label}: {sys.argv[6]}; {d['graphRequests']} Graph requests, {d['resourceUnits']} resource units, {d['throttled']} answered 429; {' '.join(line)}")
PY
}
measure "sync, nothing changed (the first after the full import: its base folded from the log)"
measure "sync, nothing changed (the run before changed nothing: its decisions stand)"
python3 - "$work/tenant-$users.json" "$work/tenant-changed.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
for u in t["users"][::100]:
    u["department"] = "Changed " + str(u.get("department"))
json.dump(t, open(sys.argv[2], "w"))
PY
curl -sf -X POST --data-binary @"$work/tenant-changed.json" "$url/_fake/reload" > /dev/null
measure "sync, 1 % of the users changed"
measure "sync, nothing changed since (its base from the mirror the sync before left)"
measure "sync, nothing changed again (its decisions stand)"
