#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 10), starting from the project's own
# inputs: tenant fixtures, server files, the Graph doc bodies, and stored event records of both
# versions (fuzz/seeds/event, one of each type).
# Needs a nightly toolchain and cargo-fuzz; without them it says so and exits 0, because the
# same properties are checked on stable by adapters/tests/hostile.rs (proptest).
#
#   fuzz/run.sh [SECONDS]          # ROSTER_FUZZ_SECONDS overrides the default too
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-${ROSTER_FUZZ_SECONDS:-10}}
if ! cargo +nightly --version >/dev/null 2>&1 || ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: skipped (needs a nightly toolchain and cargo-fuzz); hostile.rs covers the same properties on stable"
  exit 0
fi
# A short run (CI) builds the dev profile (opt-level 1, see Cargo.toml): it compiles in about
# half the time of a release build and still fuzzes at a useful rate.
profile=()
[ "$seconds" -lt 60 ] && profile=(--dev)
for target in tenant server event graph_page; do
  corpus=$(mktemp -d)
  case $target in
    tenant) cp ../fixtures/demo/tenant.json ../fixtures/tenants/*.json ../fixtures/scenarios/bad-input/*.json "$corpus"/ ;;
    server) cp ../fixtures/demo/server.json ../fixtures/scenarios/bad-input/*.json "$corpus"/ ;;
    event) cp seeds/event/* "$corpus"/ ;;
    graph_page) cp ../fixtures/graph-docs/*.json "$corpus"/ ;;
  esac
  echo "fuzz: $target for ${seconds} s"
  log=$(mktemp)
  status=0
  cargo +nightly fuzz run "${profile[@]}" "$target" "$corpus" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
    -max_len=1048576 -print_final_stats=1 > "$log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|thread|.*Test unit written)" "$log" || true
  [ "$status" -eq 0 ] || tail -n 40 "$log"
  rm -rf "$corpus" "$log"
  [ "$status" -eq 0 ] || { echo "fuzz: $target found a failure (artifacts in fuzz/artifacts/$target)"; exit 1; }
done
