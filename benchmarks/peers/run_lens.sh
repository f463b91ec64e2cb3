#!/usr/bin/env bash
# The physics cases of issue 21 on this project (bench_profiles, bench_render)
# and on the peer lens codes (lens_peers.py: lenstronomy, herculens,
# jaxtronomy, caustics), in one run, round by round and thread count by
# thread count (ours 1 thread, peers 1 thread, ours 2 threads, peers 2
# threads, next round ...), so that both sides see the same machine state.
#
#   bash benchmarks/peers/run_lens.sh [BUILD_DIR] [ROUNDS]
#
# BUILD_DIR (default build/) must hold benchmarks/bench_profiles and
# benchmarks/simulate/bench_render (configure with
# -DLENSING_ENABLE_BENCHMARKS=ON, then
# `cmake --build BUILD_DIR --target bench_profiles bench_render`).  ROUNDS
# default 2.  Environment: PYTHON, a Python with the peers (none of them is a
# dependency of the project: e.g. a virtual environment with `pip install
# lenstronomy==1.14.2 herculens jaxtronomy caustics torch numba`, see
# benchmarks/README.md); MIN_TIME, seconds per timed block (default 0.5);
# REPEATS, timed blocks per case and round (default 5; ours:
# --benchmark_repetitions); THREADS (default "1 2"); PEERS (default
# "lenstronomy herculens jaxtronomy caustics"); lenstronomy (numpy, whose
# element-wise work is single-threaded) runs at 1 thread only, and its 1-thread
# figure counts at 2 threads too; OUT, the results directory (default
# bench_results/lens-<UTC time>); NO_LENS_LIGHT=1 drops the lens light from
# the peers' image and likelihood cases (ours always have it: the table then
# says so).
#
# Threads: each side runs pinned to the first N CPUs it may use (taskset for
# ours, os.sched_setaffinity in lens_peers.py), both with OMP_NUM_THREADS=N and
# OMP_WAIT_POLICY=passive, ours with OMP_PROC_BIND=false; the peers as
# lens_peers.py documents (XLA_FLAGS at 1 thread, torch.set_num_threads(N)).
# The Serial backend of ours runs in the 1-thread round only.
#
# Writes OUT/ours.<round>.<threads>.<program>.json (Google Benchmark),
# OUT/peers.jsonl, OUT/load.txt and OUT/table.md: per case the median over
# rounds and blocks, at 1 and 2 threads, and the ratio fastest peer / ours
# (> 1: ours faster).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
rounds=${2:-2}
py=${PYTHON:-python3}
min_time=${MIN_TIME:-0.5}
repeats=${REPEATS:-5}
threads_list=${THREADS:-1 2}
peers=${PEERS:-lenstronomy herculens jaxtronomy caustics}
out=${OUT:-$root/bench_results/lens-$(date -u +%Y%m%dT%H%M%S)}
profiles=$build/benchmarks/bench_profiles
render=$build/benchmarks/simulate/bench_render
for exe in "$profiles" "$render"; do
  [[ -x "$exe" ]] || { echo "run_lens.sh: $exe not built" >&2; exit 1; }
done
for p in $peers; do
  mod=$p
  [[ $p == caustics ]] && mod="caustics, torch"
  "$py" -c "import $mod" 2>/dev/null || { echo "run_lens.sh: PYTHON=$py cannot import $mod" >&2; exit 1; }
done
mkdir -p "$out"
: >"$out/peers.jsonl"
: >"$out/load.txt"
light_flag=()
[[ "${NO_LENS_LIGHT:-0}" == 1 ]] && light_flag=(--no-lens-light)
mapfile -t cpus < <("$py" -c "import os; print(*sorted(os.sched_getaffinity(0)), sep='\n')")
profiles_filter='^BM_(sie_shear|epl|nfw)_double_(openmp|serial)/256/real_time$'
render_filter='^BM_(render<double>/(64/1|128/3|256/3)|loglike<double>/100/3/[01])$'
start=$(date +%s)
for r in $(seq 1 "$rounds"); do
  for t in $threads_list; do
    (( t <= ${#cpus[@]} )) || { echo "run_lens.sh: $t threads, ${#cpus[@]} CPUs" >&2; exit 1; }
    cpu_list=$(IFS=,; echo "${cpus[*]:0:$t}")
    echo "round $r, $t thread(s): ours (load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "$r $t ours $(cut -d' ' -f1 /proc/loadavg)" >>"$out/load.txt"
    for prog in profiles render; do
      exe=$profiles filter=$profiles_filter
      # the Serial backend (one thread whatever OMP_NUM_THREADS) only in the 1-thread run
      [[ $t != 1 ]] && filter='^BM_(sie_shear|epl|nfw)_double_openmp/256/real_time$'
      [[ $prog == render ]] && exe=$render filter=$render_filter
      OMP_NUM_THREADS=$t OMP_PROC_BIND=false OMP_WAIT_POLICY=passive taskset -c "$cpu_list" \
        "$exe" --benchmark_filter="$filter" --benchmark_min_time="$min_time" \
        --benchmark_repetitions="$repeats" --benchmark_report_aggregates_only=false \
        --benchmark_out="$out/ours.$r.$t.$prog.json" --benchmark_out_format=json >/dev/null
    done
    for p in $peers; do
      [[ $p == lenstronomy && $t != 1 ]] && continue
      echo "round $r, $t thread(s): $p (load $(cut -d' ' -f1-3 /proc/loadavg))"
      echo "$r $t $p $(cut -d' ' -f1 /proc/loadavg)" >>"$out/load.txt"
      "$py" "$here/lens_peers.py" --peer "$p" --threads "$t" --repeats "$repeats" --min-time "$min_time" \
        --json "$out/peers.jsonl" --tag "$r" "${light_flag[@]}" 2>"$out/peers.$p.$t.stderr" >/dev/null
    done
  done
done
echo "wall time $(( $(date +%s) - start )) s" | tee "$out/wall.txt"
"$py" - "$out" "${NO_LENS_LIGHT:-0}" <<'EOF' | tee "$out/table.md"
import glob, json, os, re, statistics, sys
out, no_light = sys.argv[1], sys.argv[2] == "1"
med = statistics.median
# ours: case -> threads -> [values]; deflections in ns/pixel, the rest in ms
cases = {
    "defl_sie_shear": ("SIE+shear deflection 256², ns/pixel", r"BM_sie_shear_double_(openmp|serial)/256"),
    "defl_epl": ("EPL deflection 256², ns/pixel", r"BM_epl_double_(openmp|serial)/256"),
    "defl_nfw": ("NFW deflection 256², ns/pixel", r"BM_nfw_double_(openmp|serial)/256"),
    "image_64_k1": ("image 64², k=1, ms", r"BM_render<double>/64/1$"),
    "image_128_k3": ("image 128², k=3, ms", r"BM_render<double>/128/3$"),
    "image_256_k3": ("image 256², k=3, ms", r"BM_render<double>/256/3$"),
    "loglike_100_k3_value": ("log-likelihood 100², k=3, value, ms", r"BM_loglike<double>/100/3/0$"),
    "loglike_100_k3_grad": ("log-likelihood value + gradient, ms", r"BM_loglike<double>/100/3/1$"),
}
ours, serial = {}, {}
for path in sorted(glob.glob(f"{out}/ours.*.json")):
    t = int(os.path.basename(path).split(".")[2])
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration":
            continue
        for case, (_, rx) in cases.items():
            m = re.match(rx, b["name"])
            if not m:
                continue
            if case.startswith("defl_"):
                v = b["ns/pixel"]
            else:
                assert b["time_unit"] == "ms", b
                v = b["real_time"]
            if m.groups() and m.group(1) == "serial":
                serial.setdefault(case, []).append(v)
            else:
                ours.setdefault(case, {}).setdefault(t, []).append(v)
peers, versions, light = {}, {}, set()
for line in open(f"{out}/peers.jsonl"):
    d = json.loads(line)
    peers.setdefault(d["peer"], {}).setdefault(d["case"], {}).setdefault(d["threads"], []).extend(d["values"])
    versions.update({k: v for k, v in d["versions"].items() if k != "note"})
    light.add(d["lens_light"])
order = [p for p in ("lenstronomy", "lenstronomy-numba", "herculens", "jaxtronomy", "caustics") if p in peers]
def fmt(v):
    return "–" if v is None else (f"{v:.3g}" if v < 100 else f"{v:.0f}")
def fig(d, t):
    v = d.get(t) if d else None
    return med(v) if v else None
print("versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
print("load average (1 min) at the start of each run: " +
      ", ".join(" ".join(l.split()) for l in open(f"{out}/load.txt")))
print("lens light in the peers' image and likelihood cases: " + ("yes (as ours)" if light == {True} else
      "NO (ours have it: ratios favour the peers by about 1.5x)"))
print()
head = "| case | lensing 1 / 2 thr |" + "".join(f" {p} 1 / 2 thr |" for p in order) + \
       " ours vs fastest peer, 1 thr | 2 thr |"
print(head)
print("|" + "---|" * (head.count("|") - 1))
for case, (label, _) in cases.items():
    o = ours.get(case, {})
    o1, o2 = fig(o, 1), fig(o, 2)
    cell = f"{fmt(o1)} / {fmt(o2)}"
    if case in serial:
        cell += f" (Serial {fmt(med(serial[case]))})"
    row = f"| {label} | {cell} |"
    best = {1: None, 2: None}
    for p in order:
        d = peers[p].get(case, {})
        p1, p2 = fig(d, 1), fig(d, 2)
        row += f" {fmt(p1)} / {fmt(p2)} |"
        # numpy does its element-wise work on one thread: lenstronomy's
        # 1-thread figure stands for 2 threads too
        p2_eff = p2 if p2 is not None else (p1 if p.startswith("lenstronomy") else None)
        for t, v in ((1, p1), (2, p2_eff)):
            if v is not None and (best[t] is None or v < best[t][0]):
                best[t] = (v, p)
    for t, ov in ((1, o1), (2, o2)):
        row += f" {best[t][0] / ov:.2f}× ({best[t][1]}) |" if best[t] and ov else " – |"
    print(row)
EOF
