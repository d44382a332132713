#!/usr/bin/env bash
# The SCIM target at tenant scale: a generated tenant imported into a real SCIM service
# (scim2-server, on loopback), with and without bulk requests, then imported again unchanged;
# the figures in BENCHMARKS.md ("SCIM") come from it.
#
#   bench/scim.sh [--users N] [--groups M] [--members K] [--reps R] [--work DIR]
#
# Defaults: 10,000 users, 1,000 groups of 20 members on average, an empty service. Each
# repetition starts from a fresh service and a fresh copy of the store; A (bulk) and B (a
# service whose ServiceProviderConfig offers no bulk) alternate. Reported per step: median
# wall time, roster's CPU time, the service's CPU time, and the requests the service logged
# by method. Needs scim2-server: .ci/venv (what .ci/run makes), or $ROSTER_SCIM2_SERVER.
set -euo pipefail
users=10000 groups=1000 members=20 reps=3 work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --groups) groups=$2; shift 2 ;;
    --members) members=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
scim2=${ROSTER_SCIM2_SERVER:-$PWD/.ci/venv/bin/scim2-server}
[ -x "$scim2" ] || { echo "needs scim2-server: python3 -m venv .ci/venv && .ci/venv/bin/pip install scim2-server" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 1; }
cargo build --release -q -p roster
roster=$PWD/target/release/roster
work=${work:-$(mktemp -d)}
mkdir -p "$work"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); scim2-server $("$(dirname "$scim2")/pip" show scim2-server 2>/dev/null | awk '/^Version/ {print $2}')" >&2
echo "scenario: $users users, $groups groups x $members members, an empty service; $reps repetitions; work $work" >&2

"$roster" fixture generate --users "$users" --groups "$groups" --members-per-group "$members" --seed 1 \
  --out "$work/tenant.json" --server-out "$work/server.json" --linked 0 2>/dev/null
rm -rf "$work/template"
ROSTER_STORE=$work/template "$roster" org add bench --fixture "$work/tenant.json" >/dev/null
cat > "$work/no-bulk.json" <<'JSON'
{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
 "patch": {"supported": true}, "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
 "filter": {"supported": true, "maxResults": 1000}, "changePassword": {"supported": false},
 "sort": {"supported": false}, "etag": {"supported": true}, "authenticationSchemes": []}
JSON

results=$work/results.tsv
: > "$results"
port=$((20000 + RANDOM % 20000))
# service ARGS...: starts a fresh scim2-server on $port, logging requests to $work/scim.log.
service() {
  "$scim2" --hostname 127.0.0.1 --port "$port" --bearer-token bench "$@" >> "$work/scim.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && return; sleep 0.1; done
  echo "scim2-server did not start" >&2; exit 1
}
cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
# measure NAME: one import of everything into the service, timed; appended to the results.
measure() {
  local name=$1 t; t=$(mktemp)
  : > "$work/scim.log.cut"; local before; before=$(wc -l < "$work/scim.log")
  local cpu0; cpu0=$(cpu_of "$pid")
  ROSTER_STORE=$work/store ROSTER_SCIM_TOKEN=bench /usr/bin/time -f "%e %U %S" -o "$t" \
    "$roster" --scim "http://127.0.0.1:$port/v2" import bench --select-all --json > "$work/out.json" 2>/dev/null || true
  local cpu1; cpu1=$(cpu_of "$pid")
  read -r secs usr sys < <(tail -n 1 "$t"); rm -f "$t"
  local reqs; reqs=$(tail -n +"$((before + 1))" "$work/scim.log" | grep -oE '"(GET|POST|PATCH|DELETE|PUT) ' | sort | uniq -c | awk '{printf "%s%s=%s", sep, $2, $1; sep=","}' | tr -d '"')
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$secs" "$(echo "$usr + $sys" | bc)" "$(echo "$cpu1 - $cpu0" | bc)" "$reqs" >> "$results"
}
for rep in $(seq "$reps"); do
  for variant in bulk single; do
    rm -rf "$work/store"; cp -r "$work/template" "$work/store"
    if [ $variant = bulk ]; then service; else service --service-provider-config "$work/no-bulk.json"; fi
    measure "first-$variant"
    measure "again-$variant"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
python3 - "$results" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, secs, cpu, server, reqs = line.rstrip("\n").split("\t")
    rows[name].append((float(secs), float(cpu), float(server), reqs))
print("| step | wall (median) | roster CPU | service CPU | requests |")
print("|---|---|---|---|---|")
for name, r in rows.items():
    m = statistics.median
    print(f"| {name} | {m([x[0] for x in r]):.1f} s | {m([x[1] for x in r]):.1f} s | {m([x[2] for x in r]):.1f} s | {r[-1][3]} |")
first = {k: statistics.median(x[0] for x in v) for k, v in rows.items()}
if "first-bulk" in first and "first-single" in first:
    print(f"\nfirst import, single/bulk: {first['first-single'] / first['first-bulk']:.2f}x")
PY
