#!/usr/bin/env bash
# Where the auth check spends its CPU. Runs the bench with portcullis and the floors under
# `perf record` (software clock, DWARF call graphs), twice:
#   1. floor-a, floor-b, redis/forward-auth, memory/forward-auth   (10 s each, 64 connections)
#   2. redis/forward-auth/50-groups                                (10 s, 64 connections)
# and writes flat (self) and cumulative (children) reports next to the data:
#   bench/results/tmp-perf-run{1,2}-<process>.{flat,children}.txt
# Needs a perf that can sample (`perf record -e task-clock true`); no hardware counters needed.
# Not part of CI. Under perf everything runs slower: read shares, not req/s.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "profile: perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
duration="${DURATION:-10}"
results=bench/results

report() {
  local data="$1" base="${1%.data}"
  perf report -i "$data" --no-children --sort dso,symbol --stdio -g none --percent-limit 0.3 2>/dev/null \
    | sed -E 's/ +- +- +$//; s/ +$//' > "$base.flat.txt"
  perf report -i "$data" --children --sort symbol --stdio -g none --percent-limit 1 2>/dev/null \
    | sed -E 's/ +- +- +$//; s/ +$//' > "$base.children.txt"
}

bash bench/run.sh --perf --no-warmup --reps 1 --duration "$duration" --connections 64 \
  --only floor-a,floor-b,redis/forward-auth,memory/forward-auth \
  --out "$results/tmp-profile.json"
for name in floor-a floor-b portcullis-redis portcullis-memory; do
  # The second run starts the same processes (idle) under perf: keep this run's data apart.
  mv "$results/tmp-perf-$name.data" "$results/tmp-perf-run1-$name.data"
  report "$results/tmp-perf-run1-$name.data"
done

bash bench/run.sh --perf --no-warmup --reps 1 --duration "$duration" --connections 64 \
  --only redis/forward-auth/50-groups \
  --out "$results/tmp-profile-50-groups.json"
mv "$results/tmp-perf-portcullis-redis.data" "$results/tmp-perf-run2-portcullis-redis-50-groups.data"
rm -f "$results"/tmp-perf-{floor-a,floor-b,portcullis-memory}.data
report "$results/tmp-perf-run2-portcullis-redis-50-groups.data"

for name in run1-floor-a run1-portcullis-memory run1-portcullis-redis run2-portcullis-redis-50-groups; do
  echo "== $name: portcullis functions, cumulative share of the process's CPU =="
  grep -E 'portcullis::|serde_json::de::from_slice|url::|idna::|HttpRequest::cookie|Dispatcher<T,S,B,X,U> as core|poll_flush|__libc_send' \
    "$results/tmp-perf-$name.children.txt" | head -25
done
