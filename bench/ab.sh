#!/usr/bin/env bash
# A/B of two roster builds on copies of one store, alternated, for "no command slower or
# heavier" checks across a change.
#
#   bench/ab.sh A_BINARY B_BINARY [--users N] [--reps R] [--work DIR]
#
# Each repetition runs A then B (then B then A on the next repetition) on fresh copies of one
# template store made by A: plan, import, import again, import a third time (nothing changed
# since the second), replay, verify, report --format csv, server load. Prints per command the median wall time and peak RSS of each side and B/A.
set -euo pipefail
a=$(realpath "$1") b=$(realpath "$2"); shift 2
users=100000 reps=3 work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 1; }
work=${work:-$(mktemp -d)}
mkdir -p "$work"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)" >&2
groups=$((users / 10))
"$a" fixture generate --users "$users" --groups "$groups" --members-per-group 20 --seed 1 \
  --out "$work/tenant.json" --server-out "$work/server.json" --linked 0.5 2>/dev/null
rm -rf "$work/template"
ROSTER_STORE=$work/template "$a" org add bench --fixture "$work/tenant.json" >/dev/null
ROSTER_STORE=$work/template "$a" server load "$work/server.json" 2>/dev/null

results=$work/ab.tsv
: > "$results"
measure() { # SIDE NAME STORE BINARY ARGS...
  local side=$1 name=$2 store=$3; shift 3
  local t; t=$(mktemp)
  ROSTER_STORE=$store /usr/bin/time -f "%e %M" -o "$t" "$@" > /dev/null 2>&1 || true
  read -r secs kb < <(tail -n 1 "$t"); rm -f "$t"
  printf '%s\t%s\t%s\t%s\n' "$side" "$name" "$secs" "$kb" >> "$results"
}
one() { # SIDE BINARY
  local side=$1 bin=$2 s=$work/store-$1 d=$work/dry-$1 l=$work/loaded-$1
  rm -rf "$s" "$d" "$l"; cp -r "$work/template" "$s"; cp -r "$work/template" "$d"
  local sel=(bench --select-all --check-deleted --max-deletions 1000000 --json)
  measure "$side" plan "$d" "$bin" plan "${sel[@]}"
  measure "$side" import "$s" "$bin" import "${sel[@]}" --on-deleted disable
  measure "$side" import-again "$s" "$bin" import "${sel[@]}" --on-deleted disable
  measure "$side" import-third "$s" "$bin" import "${sel[@]}" --on-deleted disable
  measure "$side" replay "$s" "$bin" replay last~2
  measure "$side" verify "$s" "$bin" verify
  measure "$side" report-csv "$s" "$bin" report last~2 --format csv
  measure "$side" server-load "$l" "$bin" server load "$work/server.json"
  rm -rf "$s" "$d" "$l"
}
for rep in $(seq 1 "$reps"); do
  if [ $((rep % 2)) = 1 ]; then one A "$a"; one B "$b"; else one B "$b"; one A "$a"; fi
done
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    side, name, secs, kb = line.rstrip("\n").split("\t")
    rows.setdefault((name, side), []).append((float(secs), int(kb)))
med = lambda k, i: statistics.median(r[i] for r in rows[k])
print("| command | A s | B s | B/A time | A MiB | B MiB | B/A RSS |")
print("|---|---:|---:|---:|---:|---:|---:|")
for n in ["plan", "import", "import-again", "import-third", "replay", "verify", "report-csv", "server-load"]:
    at, bt, am, bm = med((n, "A"), 0), med((n, "B"), 0), med((n, "A"), 1), med((n, "B"), 1)
    print(f"| {n} | {at:.2f} | {bt:.2f} | {bt/at:.2f} | {am/1024:.0f} | {bm/1024:.0f} | {bm/am:.2f} |")
PY
