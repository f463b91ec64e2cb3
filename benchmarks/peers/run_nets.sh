#!/usr/bin/env bash
# The example networks (the regressor and the DeepLens-like finder) on this
# project's layers and on PyTorch CPU, in one run, interleaved round by round
# (ours, PyTorch, ours, PyTorch, ...) so that both sides see the same load.
#
#   bash benchmarks/peers/run_nets.sh [BUILD_DIR] [ROUNDS]
#
# BUILD_DIR (default build/) must hold benchmarks/nn/bench_nn_example_nets
# (configure with -DLENSING_ENABLE_BENCHMARKS=ON, then
# `cmake --build BUILD_DIR --target bench_nn_example_nets`).  ROUNDS default 2.
# Environment: PYTHON, a Python with torch (PyTorch is not a dependency of
# the project; e.g. a virtual environment with `pip install torch`);
# MIN_TIME, seconds per timed case (default 1); OUT, the results directory
# (default bench_results/nets-<UTC time>); NO_COMPILE=1 skips torch.compile;
# FIRST_ROUND=K (with the OUT of an earlier run) adds rounds K .. K+ROUNDS-1 to
# it, and the table covers all its rounds 1 .. K+ROUNDS-1.
# THREADS (default 2): the thread count of both sides; PIN (e.g. "1"): run
# both sides under `taskset -c PIN` (the same cores); CASES: a regex picking
# the cases on both sides (e.g. 'finder.*32'); BASELINE: another build of
# bench_nn_example_nets (e.g. the code before a change), run in every round
# before ours, with its own column in the table.
# Both sides run with THREADS threads (OMP_NUM_THREADS, torch.set_num_threads),
# float.  Writes OUT/ours.<round>.json (Google Benchmark), OUT/torch.jsonl and
# OUT/table.md: per case ms/image (median over rounds, and the range), the
# images/s of ours, and the ratios PyTorch / ours (> 1: ours faster) with the
# load average of each round.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
rounds=${2:-2}
py=${PYTHON:-python3}
min_time=${MIN_TIME:-1}
out=${OUT:-$root/bench_results/nets-$(date -u +%Y%m%dT%H%M%S)}
exe=$build/benchmarks/nn/bench_nn_example_nets
[[ -x "$exe" ]] || { echo "run_nets.sh: $exe not built" >&2; exit 1; }
"$py" -c "import torch" || { echo "run_nets.sh: PYTHON=$py has no torch" >&2; exit 1; }
mkdir -p "$out"
threads=${THREADS:-2}
export OMP_NUM_THREADS=$threads OMP_PROC_BIND=false OMP_WAIT_POLICY=passive
pin=()
[[ -n "${PIN:-}" ]] && pin=(taskset -c "$PIN")
cases=${CASES:-.}
baseline=${BASELINE:-}
[[ -z "$baseline" || -x "$baseline" ]] || { echo "run_nets.sh: BASELINE=$baseline not executable" >&2; exit 1; }
compile_flag=()
[[ "${NO_COMPILE:-0}" == 1 ]] && compile_flag=(--no-compile)
first=${FIRST_ROUND:-1}
last=$((first + rounds - 1))
if [[ "$first" == 1 ]]; then
  : >"$out/torch.jsonl"
  : >"$out/load.txt"
fi
for r in $(seq "$first" "$last"); do
  if [[ -n "$baseline" ]]; then
    echo "round $r: baseline (load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "$r baseline $(cut -d' ' -f1 /proc/loadavg)" >>"$out/load.txt"
    "${pin[@]}" "$baseline" --benchmark_min_time="$min_time" --benchmark_filter="$cases" \
      --benchmark_out="$out/baseline.$r.json" --benchmark_out_format=json
  fi
  echo "round $r: ours (load $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "$r ours $(cut -d' ' -f1 /proc/loadavg)" >>"$out/load.txt"
  "${pin[@]}" "$exe" --benchmark_min_time="$min_time" --benchmark_filter="$cases" \
    --benchmark_out="$out/ours.$r.json" --benchmark_out_format=json
  echo "round $r: PyTorch (load $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "$r torch $(cut -d' ' -f1 /proc/loadavg)" >>"$out/load.txt"
  "${pin[@]}" "$py" "$here/nets_torch.py" --threads "$threads" --min-time "$min_time" --json "$out/torch.jsonl" \
    --tag "$r" --cases "$cases" "${compile_flag[@]}"
done
"$py" - "$out" "$last" <<'EOF' | tee "$out/table.md"
import json, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
import os
params = {}
def read_ours(side):
    res = {}
    for r in range(1, rounds + 1):
        path = f"{out}/{side}.{r}.json"
        if not os.path.exists(path):
            continue
        for b in json.load(open(path))["benchmarks"]:
            m = re.match(r"BM_(\w+?)_(forward|train)/(\d+)", b["name"])
            if not m or b.get("run_type", "iteration") != "iteration":
                continue
            key = (m.group(1), m.group(2), int(m.group(3)))
            assert b["time_unit"] == "ms"
            res.setdefault(key, []).append(b["real_time"] / key[2])
            params[m.group(1)] = int(b["params"])
    return res
ours, base = read_ours("ours"), read_ours("baseline")
torch = {}
for line in open(f"{out}/torch.jsonl"):
    d = json.loads(line)
    torch.setdefault((d["net"], d["mode"], d["batch"], d["side"]), []).append(min(d["ms_per_image"]))
loads = [l.split() for l in open(f"{out}/load.txt")]
med = statistics.median
def rng(v):
    return f"{min(v):.3f}–{max(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
print(f"parameters (ours): " + ", ".join(f"{k} {v:,}" for k, v in params.items()))
print("load average (1 min) at the start of each side's round: " + ", ".join(f"{s} {l}" for _, s, l in loads))
print()
bh = "baseline ms/image | ratio | " if base else ""
print(f"| network, case | {bh}ours ms/image (median; range) | ours images/s | PyTorch eager ms/image | ratio | "
      "torch.compile ms/image | ratio |")
print("|---|" + ("---|---|" if base else "") + "---|---|---|---|---|---|")
for key in sorted(ours, key=lambda k: (k[0] != "regressor", k[1] != "forward", k[2])):
    o = ours[key]
    row = f"| {key[0]} {'inference' if key[1] == 'forward' else 'fwd+bwd'} batch {key[2]} | "
    if base:
        bv = base.get(key)
        row += f"{med(bv):.3f} ({rng(bv)}) | {med(bv) / med(o):.2f} | " if bv else "– | – | "
    row += f"{med(o):.3f} ({rng(o)}) | {1e3 / med(o):,.0f} |"
    for side in ("torch-eager", "torch-compile"):
        t = torch.get(key + (side,))
        row += f" {med(t):.3f} ({rng(t)}) | {med(t) / med(o):.2f} |" if t else " – | – |"
    print(row)
EOF
