#!/usr/bin/env bash
# Two builds of bench_nn_example_nets, alternated under the same load: per
# round, 1 thread pinned (taskset -c PIN_CORE, default 1) then 2 threads
# unpinned, each before then after.  Prints, per case and thread count, the
# median over the rounds (and range) of the CPU time per batch (the main
# thread's CPU time: on a loaded machine the wall time follows the load) and
# of the wall time, and the ratios before / after (> 1: after faster), plus
# the median of the per-round wall ratios (each round's two sides run back to
# back, so the ratio cancels the host's drift between rounds).
#
#   bash benchmarks/nn/ab_example_nets.sh BEFORE AFTER OUT [ROUNDS] [FILTER] [MIN_TIME]
#
# BEFORE, AFTER: bench_nn_example_nets executables (copy the old one aside
# before rebuilding); OUT: a directory for the Google Benchmark JSON files;
# ROUNDS default 3; FILTER default '(finder|regressor)_(forward|train)/32';
# MIN_TIME seconds per case, default 1.5.  AFTER_AS='FROM>TO' (optional):
# the after side's cases whose names contain FROM are reported under the name
# with FROM replaced by TO, in place of the after side's own cases of that
# name (e.g. AFTER_AS='regressor_fused_>regressor_' with FILTER
# 'regressor(_fused)?_(forward|train)/32': the regressor before against its
# fused network after).
set -euo pipefail
before=$1 after=$2 out=$3 rounds=${4:-3} filter=${5:-'(finder|regressor)_(forward|train)/32'} mt=${6:-1.5}
core=${PIN_CORE:-1}
mkdir -p "$out"
export OMP_PROC_BIND=false OMP_WAIT_POLICY=passive
for r in $(seq 1 "$rounds"); do
  for th in 1 2; do
    for side in before after; do
      exe=$before
      [[ $side == after ]] && exe=$after
      pin=()
      [[ $th == 1 ]] && pin=(taskset -c "$core")
      echo "round $r, $th thread(s), $side (load $(cut -d' ' -f1 /proc/loadavg))"
      OMP_NUM_THREADS=$th "${pin[@]}" "$exe" --benchmark_filter="$filter" --benchmark_min_time="$mt" \
        --benchmark_out="$out/$side.t$th.r$r.json" --benchmark_out_format=json >/dev/null 2>&1
    done
  done
done
python3 - "$out" "$rounds" "${AFTER_AS:-}" <<'PY'
import json, statistics, sys
out, rounds, alias = sys.argv[1], int(sys.argv[2]), sys.argv[3]
src, dst = alias.split(">") if alias else (None, None)
res = {}
for side in ("before", "after"):
    for th in (1, 2):
        for r in range(1, rounds + 1):
            bs = json.load(open(f"{out}/{side}.t{th}.r{r}.json"))["benchmarks"]
            if side == "after" and src:
                aliased = {b["name"].replace(src, dst) for b in bs if src in b["name"]}
                bs = [dict(b, name=b["name"].replace(src, dst)) if src in b["name"] else b
                      for b in bs if src in b["name"] or b["name"] not in aliased]
            for b in bs:
                res.setdefault((b["name"], th, side), []).append((b["cpu_time"], b["real_time"]))
print("| case | threads | before CPU ms/batch (median; range) | after | before / after | before wall ms/batch | after | before / after "
      "| per-round wall before / after (median; range) |")
print("|---|---|---|---|---|---|---|---|---|")
for n in sorted({k[0] for k in res if k[2] == "before"}):
    for th in (1, 2):
        b, a = res[(n, th, "before")], res[(n, th, "after")]
        med = lambda v, i: statistics.median(x[i] for x in v)
        rng = lambda v, i: f"{min(x[i] for x in v):.1f}–{max(x[i] for x in v):.1f}"
        # The two sides of a round ran back to back: their ratio cancels the
        # host's slow drift, which the medians of each side do not.
        pr = sorted(x[1] / y[1] for x, y in zip(b, a))
        print(f"| {n} | {th} | {med(b,0):.1f} ({rng(b,0)}) | {med(a,0):.1f} ({rng(a,0)}) | {med(b,0)/med(a,0):.3f} "
              f"| {med(b,1):.1f} ({rng(b,1)}) | {med(a,1):.1f} ({rng(a,1)}) | {med(b,1)/med(a,1):.3f} "
              f"| {statistics.median(pr):.3f} ({pr[0]:.3f}–{pr[-1]:.3f}) |")
PY
