#!/usr/bin/env bash
# Whole-command benchmarks of roster at tenant scale; the figures in BENCHMARKS.md come from it.
#
#   bench/run.sh [--users N] [--groups M] [--members K] [--linked F] [--reps R] [--work DIR]
#
# Defaults are the reference scenario "100k": 100,000 users, 10,000 groups with 20 members on
# average, 1 % soft-deleted, a server holding 50,000 linked users. Each repetition starts from
# a fresh copy of the same store. Reported: median wall time and median peak RSS (GNU time) per
# command, the floor (parse the tenant + append as many events as the import wrote, one flush:
# bench/src/bin/floor.rs), and the ratios the targets are stated in.
set -euo pipefail
users=100000 groups=10000 members=20 linked=0.5 reps=3 work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --groups) groups=$2; shift 2 ;;
    --members) members=$2; shift 2 ;;
    --linked) linked=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
cargo build --release -q -p roster -p roster-bench
roster=$PWD/target/release/roster floor=$PWD/target/release/floor
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 1; }
work=${work:-$(mktemp -d)}
mkdir -p "$work"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)" >&2
echo "scenario: $users users, $groups groups x $members members, linked $linked; $reps repetitions; work $work" >&2

"$roster" fixture generate --users "$users" --groups "$groups" --members-per-group "$members" --seed 1 \
  --out "$work/tenant.json" --server-out "$work/server.json" --linked "$linked" 2>/dev/null
rm -rf "$work/template"
ROSTER_STORE=$work/template "$roster" org add bench --fixture "$work/tenant.json" >/dev/null
ROSTER_STORE=$work/template "$roster" server load "$work/server.json" 2>/dev/null

results=$work/results.tsv
: > "$results"
# measure NAME STORE ARGS...: one timed command, appended to the results.
measure() {
  local name=$1 store=$2; shift 2
  local t; t=$(mktemp)
  ROSTER_STORE=$store /usr/bin/time -f "%e %M" -o "$t" "$@" > /dev/null 2>&1 || true
  # GNU time adds a line first when the command exits non-zero (3: conflicts, as in the scenario).
  read -r secs kb < <(tail -n 1 "$t"); rm -f "$t"
  printf '%s\t%s\t%s\n' "$name" "$secs" "$kb" >> "$results"
}
events_in() { ROSTER_STORE=$1 "$roster" verify --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])'; }
run_events() { ROSTER_STORE=$1 "$roster" events "$2" | wc -l; }

for rep in $(seq 1 "$reps"); do
  rm -rf "$work/dry" "$work/store" "$work/floor" "$work/table" "$work/tty"
  cp -r "$work/template" "$work/dry"
  cp -r "$work/template" "$work/store"
  cp -r "$work/template" "$work/table"
  cp -r "$work/template" "$work/tty"
  measure plan "$work/dry" "$roster" plan bench --select-all --check-deleted --max-deletions 1000000 --json
  # The paths a person takes: the table into a pipe (every entry, streamed), and on a
  # terminal (a pseudo-terminal from script(1): the summary and what needs attention).
  measure import-table "$work/table" "$roster" import bench --select-all --check-deleted --on-deleted disable --max-deletions 1000000
  if command -v script > /dev/null; then
    measure import-terminal "$work/tty" script -qec "$roster import bench --select-all --check-deleted --on-deleted disable --max-deletions 1000000" /dev/null
  fi
  measure import "$work/store" "$roster" import bench --select-all --check-deleted --on-deleted disable --max-deletions 1000000 --json
  first_events=$(events_in "$work/store")
  # The repeat after a full run folds its base from the log (a full run leaves no mirror) and
  # leaves a mirror; it changes nothing (the deleted objects are already disabled), so the one
  # after it takes its decisions without reading anything again: what a quiet sync does. The
  # last, with --all, decides every entry again, its base from the mirror.
  measure import-again "$work/store" "$roster" import bench --select-all --check-deleted --on-deleted disable --max-deletions 1000000 --json
  measure import-mirror "$work/store" "$roster" import bench --select-all --check-deleted --on-deleted disable --max-deletions 1000000 --json
  measure import-all "$work/store" "$roster" import bench --select-all --check-deleted --on-deleted disable --max-deletions 1000000 --json --all
  measure replay "$work/store" "$roster" replay last~3
  measure verify "$work/store" "$roster" verify
  measure report-csv "$work/store" "$roster" report last~3 --format csv
  rm -rf "$work/loaded"
  measure server-load "$work/loaded" "$roster" server load "$work/server.json"
  f=$("$floor" "$work/tenant.json" "$first_events" "$work/floor")
  printf 'floor\t%s\t0\n' "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["total_ms"]/1000)' "$f")" >> "$results"
  printf 'events-import\t%s\t0\n' "$first_events" >> "$results"
  printf 'events-log\t%s\t0\n' "$(events_in "$work/store")" >> "$results"
  printf 'events-replayed\t%s\t0\n' "$(run_events "$work/store" last~3)" >> "$results"
done

python3 - "$results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, secs, kb = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append((float(secs), int(kb)))
med = {k: (statistics.median(s for s, _ in v), statistics.median(m for _, m in v)) for k, v in rows.items()}
print("| command | median s | median peak RSS MiB | runs |")
print("|---|---:|---:|---:|")
for k in ["floor", "plan", "import", "import-table", "import-terminal", "import-again", "import-mirror", "import-all", "replay", "verify", "report-csv", "server-load"]:
    if k in med:
        s, kb = med[k]
        print(f"| {k} | {s:.2f} | {kb/1024:.0f} | {len(rows[k])} |")
ev_import, ev_log, ev_run = med["events-import"][0], med["events-log"][0], med["events-replayed"][0]
print()
print(f"- events written by the first import: {ev_import:.0f}; in the log after the four imports: {ev_log:.0f}")
print(f"- import / floor: {med['import'][0] / med['floor'][0]:.2f} (target <= 2)")
if "import-table" in med:
    print(f"- import, table into a pipe / --json: {med['import-table'][0] / med['import'][0]:.2f} time, {med['import-table'][1] / med['import'][1]:.2f} peak RSS")
if "import-terminal" in med:
    print(f"- import, on a terminal / --json: {med['import-terminal'][0] / med['import'][0]:.2f} time, {med['import-terminal'][1] / med['import'][1]:.2f} peak RSS")
print(f"- import again / import: {med['import-again'][0] / med['import'][0]:.2f} (the base folded from the log)")
print(f"- import a third time, nothing changed (its base's decisions) / import: {med['import-mirror'][0] / med['import'][0]:.2f} time (target <= 0.25), {med['import-mirror'][1] / 1024:.0f} MiB peak RSS")
print(f"- import again, every entry decided (--all; its base from the mirror) / import: {med['import-all'][0] / med['import'][0]:.2f} time, {med['import-all'][1] / 1024:.0f} MiB peak RSS")
print(f"- replay of the first import / import: {med['replay'][0] / med['import'][0]:.2f} (target <= 1)")
print(f"- replay: {ev_run / med['replay'][0]:,.0f} events/s over {ev_run:.0f} events (target >= 400,000)")
print(f"- verify: {ev_log / med['verify'][0]:,.0f} events/s over {ev_log:.0f} events (target >= 400,000)")
print(f"- peak RSS, import: {med['import'][1]/1024:.0f} MiB (target < 600)")
import os
size = os.path.getsize(os.path.join(os.path.dirname(sys.argv[1]), "server.json"))
print(f"- server load: peak RSS {med['server-load'][1]/1024:.0f} MiB for a {size/2**20:.0f} MiB server file ({med['server-load'][1]*1024/size:.1f}x its size)")
EOF
