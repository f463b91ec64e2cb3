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
#
# Batched cases (issue 21's "batch of 32-256 different lenses"): ours
# BM_render_batch<double|float>/N/k (render_batch over N different SIE +
# shear lenses with elliptical Sersic sources, no lens light, 64^2, k = 1, 2,
# then the batched Gaussian PSF), the peers' batch_N_kk (herculens and
# jaxtronomy: jax.jit(jax.vmap(model)) over the lenses' parameters; caustics:
# one broadcast pass; lenstronomy: a loop), N = 32, 256, in images/s; the
# table gives wall-time rates and, for a loaded machine, the rates the
# process's CPU time projects (images per CPU second x threads).
# BATCH_ONLY=1 runs only the batched cases (ours and the peers'), IMAGES_ONLY=1
# only the image and likelihood cases.
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
needed=("$profiles" "$render")
[[ "${BATCH_ONLY:-0}" == 1 || "${IMAGES_ONLY:-0}" == 1 ]] && needed=("$render")
for exe in "${needed[@]}"; do
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
render_filter='^BM_(render<double>/(64/1|128/3|256/3)|loglike<double>/100/3/[01]|render_batch<(double|float)>/(32|256)/[12]/process_time/real_time)$'
progs="profiles render"
peer_cases=.
if [[ "${BATCH_ONLY:-0}" == 1 ]]; then
  render_filter='^BM_render_batch<(double|float)>/(32|256)/[12]/process_time/real_time$'
  progs=render
  peer_cases='^batch_'
elif [[ "${IMAGES_ONLY:-0}" == 1 ]]; then
  render_filter='^BM_(render<double>/(64/1|128/3|256/3)|loglike<double>/100/3/[01])$'
  progs=render
  peer_cases='^(image_|loglike_)'
fi
start=$(date +%s)
for r in $(seq 1 "$rounds"); do
  for t in $threads_list; do
    (( t <= ${#cpus[@]} )) || { echo "run_lens.sh: $t threads, ${#cpus[@]} CPUs" >&2; exit 1; }
    cpu_list=$(IFS=,; echo "${cpus[*]:0:$t}")
    echo "round $r, $t thread(s): ours (load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "$r $t ours $(cut -d' ' -f1 /proc/loadavg)" >>"$out/load.txt"
    for prog in $progs; do
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
        --cases "$peer_cases" --json "$out/peers.jsonl" --tag "$r" "${light_flag[@]}" \
        2>"$out/peers.$p.$t.stderr" >/dev/null
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
# batched: (precision, N, k) -> threads -> [(wall images/s, CPU images/s)]
ours_batch = {}
for path in sorted(glob.glob(f"{out}/ours.*.json")):
    t = int(os.path.basename(path).split(".")[2])
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration":
            continue
        m = re.match(r"BM_render_batch<(double|float)>/(\d+)/(\d+)/", b["name"])
        if m:
            assert b["time_unit"] == "ms", b
            count = int(m.group(2))
            ours_batch.setdefault((m.group(1), count, int(m.group(3))), {}).setdefault(t, []).append(
                (count / (b["real_time"] * 1e-3), count / (b["cpu_time"] * 1e-3)))
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
peers, versions, light, peers_batch = {}, {}, set(), {}
for line in open(f"{out}/peers.jsonl"):
    d = json.loads(line)
    versions.update({k: v for k, v in d["versions"].items() if k != "note"})
    if d["case"].startswith("batch_"):
        peers_batch.setdefault(d["peer"], {}).setdefault(d["case"], {}).setdefault(d["threads"], []).extend(
            zip(d["values"], d["cpu_values"]))
        continue
    peers.setdefault(d["peer"], {}).setdefault(d["case"], {}).setdefault(d["threads"], []).extend(d["values"])
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
if light:
    print("lens light in the peers' image and likelihood cases: " + ("yes (as ours)" if light == {True} else
          "NO (ours have it: ratios favour the peers by about 1.5x)"))
print()
head = "| case | lensing 1 / 2 thr |" + "".join(f" {p} 1 / 2 thr |" for p in order) + \
       " ours vs fastest peer, 1 thr | 2 thr |"
if ours or peers:  # none with BATCH_ONLY=1
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
for case, (label, _) in cases.items() if ours or peers else ():
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

# Batched cases: images/s (higher is faster), wall time and the CPU-time
# projection (images per CPU second x threads: the rate without the other
# processes of a loaded machine); ratios ours / herculens' vmap.
if ours_batch or peers_batch:
    border = [p for p in ("lenstronomy", "herculens", "jaxtronomy", "caustics") if p in peers_batch]
    def kfmt(v):
        return "–" if v is None else (f"{v / 1000:.3g}k" if v >= 1000 else f"{v:.3g}")
    def bfig(d, t, which):
        v = d.get(t) if d else None
        return med([x[which] * (t if which else 1) for x in v]) if v else None
    keys = sorted({(c, k) for (_, c, k) in ours_batch} |
                  {(int(c.split("_")[1]), int(c.split("_k")[1])) for p in peers_batch for c in peers_batch[p]},
                  key=lambda x: (x[1], x[0]))
    for which, title in ((0, "wall time"), (1, "CPU-time projection: images per CPU second x threads")):
        print()
        print(f"Batched, {title}: a batch of N different lenses (SIE + shear, elliptical Sersic source, no lens "
              "light), 64², Gaussian PSF FWHM 0.1\", images/s, 1 / 2 thr; peers in double")
        print()
        head = "| case | lensing double | lensing float |" + "".join(f" {p} |" for p in border) + \
               " double vs herculens vmap, 1 / 2 thr | float vs herculens vmap, 1 / 2 thr |"
        print(head)
        print("|" + "---|" * (head.count("|") - 1))
        for count, k in keys:
            od, of = ours_batch.get(("double", count, k), {}), ours_batch.get(("float", count, k), {})
            row = f"| batch {count}, k={k} | {kfmt(bfig(od, 1, which))} / {kfmt(bfig(od, 2, which))} | " \
                  f"{kfmt(bfig(of, 1, which))} / {kfmt(bfig(of, 2, which))} |"
            h = peers_batch.get("herculens", {}).get(f"batch_{count}_k{k}", {})
            for p in border:
                d = peers_batch[p].get(f"batch_{count}_k{k}", {})
                row += f" {kfmt(bfig(d, 1, which))} / {kfmt(bfig(d, 2, which))} |"
            for o in (od, of):
                cells = []
                for t in (1, 2):
                    a, b = bfig(o, t, which), bfig(h, t, which)
                    cells.append(f"{a / b:.2f}×" if a and b else "–")
                row += " " + " / ".join(cells) + " |"
            print(row)
EOF
