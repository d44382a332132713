#!/usr/bin/env bash
# Incremental runs at tenant scale: the first import, an unchanged repeat, a repeat after 1 %
# of the users changed, replay of the last run of the chain, and N unchanged syncs — time,
# peak RSS and store growth, side by side in one run; then issue 26's targets as ratios, with
# the laps of the 1 % run when its target is missed.
#
#   bench/incremental.sh [--users N] [--syncs N] [--work DIR] [--against SECS MIB]
#
# --against: the first import's time and peak RSS at 100k (this script's own figures there),
# to state a larger tenant's first import against them (issue 26: ≤ 12× the time, ≤ 2× the peak).
set -euo pipefail
users=100000 syncs=10 work="" against_secs="" against_mib=""
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --syncs) syncs=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --against) against_secs=$2 against_mib=$3; shift 3 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
cargo build --release -q -p roster
roster=$PWD/target/release/roster
work=${work:-$(mktemp -d)}
mkdir -p "$work"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)" >&2
if [ ! -f "$work/tenant.json" ]; then
  "$roster" fixture generate --users "$users" --groups $((users / 10)) --members-per-group 20 --seed 1 \
    --out "$work/tenant.json" --server-out "$work/server.json" --linked 0.5 2>/dev/null
fi
cp "$work/tenant.json" "$work/original.json"
# 1 % of the users changed: every 100th user moves department; then every 100th user renamed
# (a new UPN: its login and its group memberships follow); then every user renamed (the
# domain changed).
python3 - "$work/original.json" "$work" <<'PY'
import copy, json, sys
t = json.load(open(sys.argv[1]))
def write(name, change):
    c = copy.deepcopy(t)
    for i, u in enumerate(c["users"]):
        change(i, u)
    json.dump(c, open(sys.argv[2] + "/" + name, "w"))
def moved(i, u):
    if i % 100 == 0:
        u["department"] = "Moved " + str(i)
def renamed(i, u):
    if i % 100 == 0:
        u["userPrincipalName"] = "r" + u["userPrincipalName"]
def rebranded(i, u):
    u["userPrincipalName"] = u["userPrincipalName"].replace("@contoso.example", "@fabrikam.example")
write("changed.json", moved)
write("renamed.json", renamed)
write("rebranded.json", rebranded)
# A group of every user ("All staff"), then the same group with one member gone.
everyone = copy.deepcopy(t)
group = {"id": "0a11a11a-0000-4000-8000-000000000001", "displayName": "All staff",
         "description": "Everyone", "groupTypes": [], "securityEnabled": True, "mailEnabled": False,
         "mail": None, "membershipRule": None,
         "members": [{"@odata.type": "#microsoft.graph.user", "id": u["id"]} for u in t["users"]]}
everyone["groups"].append(group)
json.dump(everyone, open(sys.argv[2] + "/everyone.json", "w"))
group["members"] = group["members"][1:]
json.dump(everyone, open(sys.argv[2] + "/everyone-but-one.json", "w"))
PY
store=$work/inc-store
rm -rf "$store"
export ROSTER_STORE=$store
"$roster" org add bench --fixture "$work/tenant.json" >/dev/null
"$roster" server load "$work/server.json" 2>/dev/null
sel=(bench --select-all --check-deleted --on-deleted disable --max-deletions 1000000 --json)
size() { du -sk "$store" | awk '{print $1}'; }
declare -A took peak
laps=$work/laps.txt
measure() { # NAME ARGS...: time, peak RSS, store growth (the run's laps kept in $laps)
  local name=$1; shift
  local before t; before=$(size); t=$(mktemp)
  ROSTER_LOG=app=debug /usr/bin/time -f "%e %M" -o "$t" "$@" > /dev/null 2> "$laps" || true
  read -r secs kb < <(tail -n 1 "$t"); rm -f "$t"
  took[$name]=$secs peak[$name]=$((kb / 1024))
  printf '| %s | %.2f | %d | %+.1f |\n' "$name" "$secs" $((kb / 1024)) "$(echo "($(size) - $before) / 1024" | bc -l)"
}
# target LABEL VALUE BOUND: one row of the targets table (met when VALUE ≤ BOUND).
target() {
  local verdict=missed
  [ "$(echo "$2 <= $3" | bc -l)" = 1 ] && verdict=met
  printf '| %s | %.2f | ≤ %s | %s |\n' "$1" "$2" "$3" "$verdict"
}
echo "| command | s | peak RSS MiB | store growth MB |"
echo "|---|---:|---:|---:|"
measure "first import (full)" "$roster" import "${sel[@]}"
measure "repeat (deleted objects now already disabled)" "$roster" import "${sel[@]}"
measure "unchanged repeat (the run before changed nothing: its decisions stand)" "$roster" import "${sel[@]}"
measure "unchanged repeat, --all (every entry decided; its base from the mirror)" "$roster" import "${sel[@]}" --all
measure "unchanged repeat, --full" "$roster" import "${sel[@]}" --full
measure "unchanged repeat after a full run" "$roster" import "${sel[@]}"
cp "$work/changed.json" "$work/tenant.json"
measure "repeat after 1 % of users changed" "$roster" import "${sel[@]}"
cp "$laps" "$work/changed-laps.txt"
cp "$work/original.json" "$work/tenant.json"
measure "replay of that run (chain of 3 after the full run)" "$roster" replay last
measure "report --all of that run" "$roster" report last~0 --all --format csv
before=$(size)
start=$(date +%s.%N)
for _ in $(seq 1 "$syncs"); do "$roster" sync bench >/dev/null 2>&1 || true; done
echo
echo "- $syncs unchanged syncs: $(echo "($(date +%s.%N) - $start) / $syncs" | bc -l | cut -c1-5) s each, store growth $(echo "($(size) - $before) / 1024" | bc -l | cut -c1-5) MB in all"
echo
echo "| command | s | peak RSS MiB | store growth MB |"
echo "|---|---:|---:|---:|"
cp "$work/original.json" "$work/tenant.json"
"$roster" import "${sel[@]}" >/dev/null 2>&1 || true
cp "$work/renamed.json" "$work/tenant.json"
measure "repeat after 1 % of users renamed (a new UPN)" "$roster" import "${sel[@]}"
cp "$work/rebranded.json" "$work/tenant.json"
measure "repeat after every user renamed (the domain changed)" "$roster" import "${sel[@]}"
cp "$work/everyone.json" "$work/tenant.json"
"$roster" import "${sel[@]}" >/dev/null 2>&1 || true
cp "$work/everyone-but-one.json" "$work/tenant.json"
measure "one member leaves a group of every user (the report table printed)" "$roster" import "${sel[@]:0:${#sel[@]}-1}"
cp "$work/original.json" "$work/tenant.json"
echo
echo "- events in the log: $("$roster" verify --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')"
# Issue 26's targets, as ratios within this run.
first=${took["first import (full)"]}
echo
echo "| target | measured | bound | |"
echo "|---|---:|---:|---|"
target "unchanged repeat ÷ first import (time)" \
  "$(echo "${took["unchanged repeat (the run before changed nothing: its decisions stand)"]} / $first" | bc -l)" 0.25
target "1 % changed ÷ first import (time)" "$(echo "${took["repeat after 1 % of users changed"]} / $first" | bc -l)" 0.35
target "replay ÷ first import (time)" "$(echo "${took["replay of that run (chain of 3 after the full run)"]} / $first" | bc -l)" 1
if [ "$users" -ge 1000000 ]; then
  target "unchanged repeat, s" "${took["unchanged repeat (the run before changed nothing: its decisions stand)"]}" 3
  target "unchanged repeat, peak MiB" "${peak["unchanged repeat (the run before changed nothing: its decisions stand)"]}" 600
fi
if [ -n "$against_secs" ]; then
  target "first import ÷ the given first import (time)" "$(echo "$first / $against_secs" | bc -l)" 12
  target "first import ÷ the given first import (peak RSS)" \
    "$(echo "${peak["first import (full)"]} / $against_mib" | bc -l)" 2
fi
# Where the 1 % run's target is missed, the laps that bound it.
if [ "$(echo "${took["repeat after 1 % of users changed"]} / $first <= 0.35" | bc -l)" != 1 ]; then
  echo
  echo "Laps of the 1 % run (ms since it started; rss and peak MiB):"
  grep -o 'app::run: .*elapsed_ms=.*' "$work/changed-laps.txt" | sed 's/^app::run: /- /' || true
fi
