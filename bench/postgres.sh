#!/usr/bin/env bash
# The same scenario with the store in a directory (sled) and in PostgreSQL, alternated:
#
#   R=path/to/roster TENANT=tenant.json SERVER=server.json PGPORT=55432 bench/postgres.sh
#
# Needs a PostgreSQL server on 127.0.0.1:$PGPORT whose superuser `roster` connects without a
# password (BENCHMARKS.md says how the figures' server was made) and GNU time. TENANT and
# SERVER come from `roster fixture generate` (bench/run.sh makes them). Each repetition starts
# from a fresh copy of one store: `cp -r` of the directory, `CREATE DATABASE … TEMPLATE` of the
# database. Prints "REP SIDE COMMAND SECONDS s KB" lines.
set -u
R=${R:-target/release/roster}
TENANT=${TENANT:?the tenant file} SERVER=${SERVER:?the server file}
PGPORT=${PGPORT:-55432}
W=$(mktemp -d); PG="postgres://roster@127.0.0.1:$PGPORT"
psql() { command psql -h 127.0.0.1 -p "$PGPORT" -U roster -d postgres -qtAc "$1"; }
psql "DROP DATABASE IF EXISTS tmpl" ; psql "CREATE DATABASE tmpl"
ROSTER_STORE=$W/tmpl $R org add bench --fixture $TENANT >/dev/null
/usr/bin/time -f "sled server-load %e s %M KB" env ROSTER_STORE=$W/tmpl $R server load $SERVER 2>&1 >/dev/null | tail -1
ROSTER_STORE=$PG/tmpl $R org add bench --fixture $TENANT >/dev/null
/usr/bin/time -f "pg server-load %e s %M KB" env ROSTER_STORE=$PG/tmpl $R server load $SERVER 2>&1 >/dev/null | tail -1
IMPORT="import bench --select-all --check-deleted --on-deleted disable --max-deletions 100000"
for rep in 1 2 3; do
  for side in sled pg; do
    if [ $side = sled ]; then rm -rf $W/s; cp -r $W/tmpl $W/s; S=$W/s; else psql "DROP DATABASE IF EXISTS r"; psql "CREATE DATABASE r TEMPLATE tmpl"; S=$PG/r; fi
    for step in first again third; do
      /usr/bin/time -f "$rep $side $step %e s %M KB" env ROSTER_STORE=$S $R $IMPORT 2>&1 >/dev/null | tail -1
    done
    /usr/bin/time -f "$rep $side verify %e s %M KB" env ROSTER_STORE=$S $R verify 2>&1 >/dev/null | tail -1
    /usr/bin/time -f "$rep $side replay %e s %M KB" env ROSTER_STORE=$S $R replay last~2 2>&1 >/dev/null | tail -1
  done
done
