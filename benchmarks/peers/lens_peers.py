#!/usr/bin/env python3
"""The physics cases of issue 21 on the peer lens codes, for comparison only.

    python3 lens_peers.py --peer {lenstronomy,herculens,jaxtronomy,caustics}
                          [--threads 1] [--repeats 5] [--min-time 0.2]
                          [--cases REGEX] [--no-lens-light] [--json OUT.jsonl]
                          [--tag T] [--check]

None of these packages is a dependency of the project; this script only
measures them (benchmarks/peers/run_lens.sh runs it next to the project's
bench_profiles and bench_render).  Every case is the work of the project's
case of the same name, double precision:

  defl_sie_shear   deflection of SIE (theta_E 1.2, e1 0.1, e2 -0.05, centre
                   (0.02, -0.01)) + external shear (0.03, -0.02) on a 256^2
                   grid of a 4" field (benchmarks/profiles/profile_zoo.hpp),
                   ns per pixel; bench_profiles BM_sie_shear_double_*/256
  defl_epl         EPL theta_E 1.2, gamma 2.1, same e1, e2, centre
  defl_nfw         NFW Rs 5", alpha_Rs 0.8", centre (0.02, -0.01)
  image_64_k1, image_128_k3, image_256_k3
                   n^2 image, 0.05" pixels, k x k supersampling (sub-pixel
                   values averaged), lens SIE + shear, elliptical Sersic
                   source and elliptical Sersic lens light, then the Gaussian
                   PSF of FWHM 0.1" as scipy.ndimage.gaussian_filter
                   (mode 'nearest', truncate 5: 9 taps) on the n^2 image;
                   ms per image; bench_render BM_render<double>/n/k
  loglike_100_k3_value, loglike_100_k3_grad
                   Gaussian log-likelihood -1/2 sum((M - d)^2 / 0.05^2) of
                   that model on a 100^2 k = 3 mock d rendered at the true
                   parameters, evaluated with the source moved by 0.01";
                   value, and value + gradient with respect to all 23
                   parameters (jax.value_and_grad / torch autograd); ms;
                   bench_render BM_loglike<double>/100/3/{0,1}
                   (the model parameters are bench_render.cpp make_model's)

  batch_N_kk       N = 32, 256 different lenses (SIE + shear, elliptical
                   Sersic source, no lens light; parameter j of lens i is
                   lo_j + (hi_j - lo_j) frac((i + 1) sqrt(p_j)), p_j the j-th
                   prime, BATCH_RANGES), 64^2 pixels of 0.05", k = 1, 2, then
                   the Gaussian PSF as above; images/s (and cpu_values: per
                   second of the process's CPU time); bench_render
                   BM_render_batch<double>/N/k (float too on our side)

--no-lens-light drops the lens light on both the image and the likelihood
cases (the project's cases always have it; use it only to reproduce figures
taken without it).

How each peer computes (its own user-level API unless stated):
  lenstronomy  LensModel.alpha on flattened grids; ImageModel.image with
               PSF('GAUSSIAN', truncation 5) and kwargs_numerics
               supersampling_factor k (scipy gaussian_filter on the binned
               image); EPL also as 'EPL_NUMBA' when numba imports
               (peer 'lenstronomy-numba'); no gradient.  Batches: one
               image after the other.
  herculens    MassModel.alpha, LensImage.model (kwargs_numerics
               supersampling_factor k, truncation 5: its Gaussian filter
               then has 9 taps), jitted with the parameters as arguments;
               no NFW profile.  Batches: jax.jit(jax.vmap(model)) over the
               lenses' parameters (kwargs whose values are (N,) arrays).
  jaxtronomy   LensModel.alpha, ImageModel.image (lenstronomy's PSF class,
               truncation 5), jitted with the parameters as arguments;
               batches as herculens.
  caustics     its functional API (caustics.func: the same functions its
               lens and light modules call, without the module layer):
               SIE, external shear, EPL (n_iter 18, its default), NFW
               (mass and concentration solved so that Rs = 5" and
               alpha_Rs = 0.8" at z_l 0.5, z_s 1), Sersic with lenstronomy's
               b(n); binning and the 9-tap 'nearest' Gaussian filter as
               torch avg_pool2d and two 1-D conv2d on a replicate-padded
               image, as the other codes do.  caustics' own LensSource
               simulator is not used: it convolves on the supersampled grid
               (the PSF sampled k times finer, a padded field), more work
               than these cases.  Batches: the parameters as (N, 1, 1)
               tensors, the same functions broadcast over the N lenses in
               one pass.  Parameters are converted to caustics'
               (q, phi) from (e1, e2) inside the differentiated function,
               its Sersic Re = R_sersic / sqrt(q) (its elliptical radius
               is sqrt(x'^2 + y'^2 / q^2)); the SIE's Rein is lenstronomy's
               theta_E.

Threads: set before any of the packages is imported.  The process is pinned
to the first N CPUs it may use (os.sched_setaffinity), OMP_NUM_THREADS,
MKL_NUM_THREADS and OPENBLAS_NUM_THREADS = N, OMP_WAIT_POLICY=passive
(unless set; run_lens.sh runs the project's side passive too); JAX (CPU
only) sizes its thread pool from the pinned CPUs and at N = 1 also gets
XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1;
torch gets torch.set_num_threads(N), torch.set_num_interop_threads(1).
numpy (lenstronomy) runs its element-wise work on one thread whatever N.

Timing: JIT compilation (first call) and warm-up are excluded; each case
then runs --repeats blocks of at least --min-time seconds, and the per-call
time of each block is recorded (wall time, and the process's CPU time over
all its threads as cpu_values); the median over blocks is reported
(JAX results are waited for with block_until_ready).  One JSON object per
case is printed and, with --json, appended to the file.  --check also prints
the relative difference of each image to lenstronomy's (same parameters), a
check that the case is the same.
"""
import argparse
import json
import math
import os
import re
import statistics
import sys
import time

PEERS = ("lenstronomy", "herculens", "jaxtronomy", "caustics")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peer", required=True, choices=PEERS)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.2)
    p.add_argument("--cases", default=".")
    p.add_argument("--no-lens-light", action="store_true")
    p.add_argument("--json")
    p.add_argument("--tag", default="")
    p.add_argument("--check", action="store_true")
    return p.parse_args()


def pin_threads(n):
    """Pin this process and the thread pools of numpy, JAX and torch to n CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if n < 1 or n > len(cpus):
        sys.exit(f"lens_peers.py: --threads {n}: this process may use {len(cpus)} CPUs")
    os.sched_setaffinity(0, cpus[:n])
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    # spinning OpenMP workers (torch's) would take the CPU from a descheduled
    # sibling on a shared machine; the project's side runs passive too
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ["JAX_ENABLE_X64"] = "1"
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    if n == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()


# ---------------------------------------------------------------- the cases --
# Deflection cases: benchmarks/profiles/profile_zoo.hpp, 256^2 over 4".
DEFL_N, DEFL_FIELD = 256, 4.0
SIE_SHEAR = ({"theta_E": 1.2, "e1": 0.1, "e2": -0.05, "center_x": 0.02, "center_y": -0.01},
             {"gamma1": 0.03, "gamma2": -0.02, "ra_0": 0.0, "dec_0": 0.0})
EPL = {"theta_E": 1.2, "gamma": 2.1, "e1": 0.1, "e2": -0.05, "center_x": 0.02, "center_y": -0.01}
NFW = {"Rs": 5.0, "alpha_Rs": 0.8, "center_x": 0.02, "center_y": -0.01}

# Image and likelihood cases: benchmarks/simulate/bench_render.cpp make_model
# (23 parameters in this order), 0.05" pixels, PSF FWHM 0.1".
NAMES = [("lens", "theta_E"), ("lens", "e1"), ("lens", "e2"), ("lens", "center_x"), ("lens", "center_y"),
         ("shear", "gamma1"), ("shear", "gamma2"), ("shear", "ra_0"), ("shear", "dec_0")] + \
        [(c, k) for c in ("source", "lens_light")
         for k in ("amp", "R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y")]
THETA = [1.05, 0.05, -0.03, 0.013, -0.021, 0.03, -0.02, 0.0, 0.0,
         20.0, 0.25, 1.6, 0.08, -0.05, 0.06, 0.03,
         8.0, 0.6, 3.2, -0.06, 0.04, 0.013, -0.021]
PIX, FWHM, TRUNCATE, SIGMA_NOISE = 0.05, 0.1, 5.0, 0.05
IMAGE_CASES = [(64, 1), (128, 3), (256, 3)]
LIKE_N, LIKE_K, SOURCE_SHIFT = 100, 3, 0.01

# Batched cases (batch_<N>_k<k>): N different lenses, each SIE + shear with an
# elliptical Sersic source, no lens light, 64^2 pixels of 0.05", k x k
# supersampling, the Gaussian PSF; parameter j of lens i is lo_j + (hi_j -
# lo_j) frac((i + 1) sqrt(p_j)), p_j the j-th prime, as bench_render.cpp's
# BM_render_batch.  Names: NAMES without the lens light.
BATCH_NAMES = NAMES[:16]
BATCH_RANGES = [(0.8, 1.5), (-0.2, 0.2), (-0.2, 0.2), (-0.05, 0.05), (-0.05, 0.05),
                (-0.05, 0.05), (-0.05, 0.05), (0.0, 0.0), (0.0, 0.0),
                (5.0, 30.0), (0.1, 0.5), (0.8, 4.0), (-0.2, 0.2), (-0.2, 0.2), (-0.2, 0.2), (-0.2, 0.2)]
BATCH_PRIMES = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53]
BATCH_N = 64
BATCH_CASES = [(32, 1), (256, 1), (32, 2), (256, 2)]


def batch_theta(count):
    """theta[j][i]: parameter j (BATCH_NAMES) of lens i, as lists of floats."""
    return [[lo + (hi - lo) * math.fmod((i + 1) * math.sqrt(p), 1.0) for i in range(count)]
            for (lo, hi), p in zip(BATCH_RANGES, BATCH_PRIMES)]


def batch_kwargs(theta):
    """kwargs_lens, kwargs_source of the batch (each value an array over lenses)."""
    kl, ks, _ = kwargs_from(list(theta) + [None] * 7, lens_light=False)
    return kl, ks


def kwargs_from(theta, lens_light=True):
    """lenstronomy-style kwargs lists from the 23 parameters (any array type)."""
    d = {"lens": {}, "shear": {}, "source": {}, "lens_light": {}}
    for (c, k), v in zip(NAMES, theta):
        d[c][k] = v
    return [d["lens"], d["shear"]], [d["source"]], ([d["lens_light"]] if lens_light else [])


def grid_1d(n, step):
    """Pixel centres (i - (n - 1) / 2) * step (lenstronomy make_grid)."""
    return [(i - (n - 1) / 2) * step for i in range(n)]


def fine_grid(np, n, k, pix=PIX):
    """The k-supersampled coordinates of an n^2 grid, (n k)^2 row-major."""
    g = np.asarray(grid_1d(n * k, pix / k))
    return np.meshgrid(g, g, indexing="xy")


def liked_theta():
    t = list(THETA)
    t[NAMES.index(("source", "center_x"))] += SOURCE_SHIFT
    return t


# ------------------------------------------------------------------ timing --
def measure(fn, repeats, min_time, sync=lambda r: r):
    """Per-call seconds (wall, and the process's CPU time over all its threads)
    of `repeats` blocks of >= min_time seconds; fn's first calls
    (compilation, warm-up) are not timed."""
    for _ in range(2):
        sync(fn())
    t0 = time.perf_counter()
    sync(fn())
    once = max(time.perf_counter() - t0, 1e-7)
    calls = max(1, int(math.ceil(min_time / once)))
    per_call, per_call_cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            r = fn()
        sync(r)
        per_call.append((time.perf_counter() - t0) / calls)
        per_call_cpu.append((time.process_time() - c0) / calls)
    return per_call, per_call_cpu


# --------------------------------------------------------------- the peers --
def peer_lenstronomy(args, lens_light):
    import numpy as np
    import lenstronomy
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    cases = {}
    g = np.asarray(grid_1d(DEFL_N, DEFL_FIELD / DEFL_N))
    x, y = (a.ravel() for a in np.meshgrid(g, g, indexing="xy"))
    defl = {"defl_sie_shear": (["SIE", "SHEAR"], list(SIE_SHEAR)), "defl_epl": (["EPL"], [EPL]),
            "defl_nfw": (["NFW"], [NFW])}
    for name, (models, kw) in defl.items():
        lm = LensModel(models)
        cases[name] = (lambda lm=lm, kw=kw: lm.alpha(x, y, kw), None)
    try:
        import numba  # noqa: F401
        lm_numba = LensModel(["EPL_NUMBA"])
        cases["defl_epl@numba"] = (lambda: lm_numba.alpha(x, y, [EPL]), None)
    except ImportError:
        pass

    def image_model(n, k, light=lens_light):
        data = ImageData(image_data=np.zeros((n, n)), transform_pix2angle=np.diag([PIX, PIX]),
                         ra_at_xy_0=-(n - 1) / 2 * PIX, dec_at_xy_0=-(n - 1) / 2 * PIX)
        psf = PSF(psf_type="GAUSSIAN", fwhm=FWHM, truncation=TRUNCATE)
        return ImageModel(data, psf, lens_model_class=LensModel(["SIE", "SHEAR"]),
                          source_model_class=LightModel(["SERSIC_ELLIPSE"]),
                          lens_light_model_class=LightModel(["SERSIC_ELLIPSE"] if light else []),
                          kwargs_numerics={"supersampling_factor": k, "supersampling_convolution": False})

    images = {}
    for n, k in IMAGE_CASES:
        im = image_model(n, k)
        kl, ks, kll = kwargs_from(THETA, lens_light)
        cases[f"image_{n}_k{k}"] = (lambda im=im, kl=kl, ks=ks, kll=kll: im.image(kl, ks, kll), None)
        images[(n, k)] = im.image(kl, ks, kll)
    # batches: one lens after the other (numpy has no batched form of its model)
    for count, k in BATCH_CASES:
        im = image_model(BATCH_N, k, light=False)
        theta = batch_theta(count)
        lenses = [batch_kwargs([t[i] for t in theta]) for i in range(count)]
        cases[f"batch_{count}_k{k}"] = (
            lambda im=im, lenses=lenses: [im.image(kl, ks, []) for kl, ks in lenses], None)
        if args.check:
            images[("batch", count, k)] = np.stack([im.image(kl, ks, []) for kl, ks in lenses])
    im = image_model(LIKE_N, LIKE_K)
    data = im.image(*kwargs_from(THETA, lens_light))
    kl, ks, kll = kwargs_from(liked_theta(), lens_light)
    cases["loglike_100_k3_value"] = (
        lambda: -0.5 * np.sum(((im.image(kl, ks, kll) - data) / SIGMA_NOISE) ** 2), None)
    return cases, {"lenstronomy": lenstronomy.__version__, "numpy": np.__version__}, images


def jax_versions(pkg):
    import importlib.metadata as md
    import jax
    return {pkg: md.version(pkg), "jax": jax.__version__}


def jax_likelihood_cases(cases, render, lens_light):
    """value and value+gradient of the Gaussian log-likelihood of render(kl, ks, kll)."""
    import jax
    import jax.numpy as jnp
    data = render(*kwargs_from([jnp.asarray(v) for v in THETA], lens_light))

    def loglike(theta):
        m = render(*kwargs_from([theta[i] for i in range(len(THETA))], lens_light))
        return -0.5 * jnp.sum(((m - data) / SIGMA_NOISE) ** 2)

    t = jnp.asarray(liked_theta())
    value, vg = jax.jit(loglike), jax.jit(jax.value_and_grad(loglike))
    cases["loglike_100_k3_value"] = (lambda: value(t), None)
    cases["loglike_100_k3_grad"] = (lambda: vg(t), None)


def peer_herculens(args, lens_light):
    import jax
    import jax.numpy as jnp
    import numpy as np
    from herculens.Coordinates.pixel_grid import PixelGrid
    from herculens.Instrument.noise import Noise
    from herculens.Instrument.psf import PSF
    from herculens.LensImage.lens_image import LensImage
    from herculens.LightModel.light_model import LightModel
    from herculens.LightModel.Profiles.sersic import Sersic

    def sersic():
        # lenstronomy's (and the project's) R_sersic is the product-average
        # radius sqrt(q x'^2 + y'^2 / q); herculens' default is the major axis.
        return Sersic(radius_major_axis=False)
    from herculens.MassModel.mass_model import MassModel

    # herculens 0.3.0 calls jnp.clip(q, a_max=...), keywords that jax 0.10 (which
    # jaxtronomy 0.1.5 requires) no longer takes: map them to min / max (same op).
    clip = jnp.clip
    import inspect
    if "a_max" not in inspect.signature(clip).parameters:
        def clip_compat(x, min=None, max=None, a_min=None, a_max=None, **kw):
            return clip(x, min=min if a_min is None else a_min, max=max if a_max is None else a_max, **kw)
        jnp.clip = clip_compat

    cases = {}
    g = jnp.asarray(grid_1d(DEFL_N, DEFL_FIELD / DEFL_N))
    x, y = jnp.meshgrid(g, g, indexing="xy")
    for name, (models, kw) in {"defl_sie_shear": (["SIE", "SHEAR"], list(SIE_SHEAR)),
                               "defl_epl": (["EPL"], [EPL])}.items():
        mm = MassModel(models)
        f = jax.jit(lambda x, y, kw, mm=mm: mm.alpha(x, y, kw))
        kw = jax.tree_util.tree_map(jnp.asarray, kw)
        cases[name] = (lambda f=f, kw=kw: f(x, y, kw), None)

    def lens_image(n, k, light=lens_light):
        grid = PixelGrid(nx=n, ny=n, transform_pix2angle=np.diag([PIX, PIX]),
                         ra_at_xy_0=-(n - 1) / 2 * PIX, dec_at_xy_0=-(n - 1) / 2 * PIX)
        psf = PSF(psf_type="GAUSSIAN", fwhm=FWHM, pixel_size=PIX)
        return LensImage(grid, psf, noise_class=Noise(n, n, noise_map=np.full((n, n), SIGMA_NOISE)),
                         lens_mass_model_class=MassModel(["SIE", "SHEAR"]),
                         source_model_class=LightModel([sersic()]),
                         lens_light_model_class=LightModel([sersic()]) if light else None,
                         kwargs_numerics={"supersampling_factor": k, "truncation": TRUNCATE})

    def renderer(n, k):
        li = lens_image(n, k)
        return lambda kl, ks, kll: li.model(kwargs_lens=kl, kwargs_source=ks,
                                            kwargs_lens_light=kll if lens_light else None)

    images = {}
    for n, k in IMAGE_CASES:
        f = jax.jit(renderer(n, k))
        kw = kwargs_from([jnp.asarray(v) for v in THETA], lens_light)
        cases[f"image_{n}_k{k}"] = (lambda f=f, kw=kw: f(*kw), None)
        images[(n, k)] = np.asarray(f(*kw))
    # batches: jax.vmap of the model over the lenses' parameters, jitted
    for count, k in BATCH_CASES:
        li = lens_image(BATCH_N, k, light=False)
        f = jax.jit(jax.vmap(lambda kl, ks, li=li: li.model(kwargs_lens=kl, kwargs_source=ks,
                                                            kwargs_lens_light=None)))
        kl, ks = batch_kwargs([jnp.asarray(v) for v in batch_theta(count)])
        cases[f"batch_{count}_k{k}"] = (lambda f=f, kl=kl, ks=ks: f(kl, ks), None)
        images[("batch", count, k)] = np.asarray(f(kl, ks))
    jax_likelihood_cases(cases, renderer(LIKE_N, LIKE_K), lens_light)
    return cases, jax_versions("herculens"), images


def peer_jaxtronomy(args, lens_light):
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jaxtronomy.Data.imaging_data import ImageData
    from jaxtronomy.ImSim.image_model import ImageModel
    from jaxtronomy.LensModel.lens_model import LensModel
    from jaxtronomy.LightModel.light_model import LightModel
    from lenstronomy.Data.psf import PSF

    cases = {}
    g = jnp.asarray(grid_1d(DEFL_N, DEFL_FIELD / DEFL_N))
    x, y = (a.ravel() for a in jnp.meshgrid(g, g, indexing="xy"))
    for name, (models, kw) in {"defl_sie_shear": (["SIE", "SHEAR"], list(SIE_SHEAR)),
                               "defl_epl": (["EPL"], [EPL]), "defl_nfw": (["NFW"], [NFW])}.items():
        lm = LensModel(models)
        f = jax.jit(lambda x, y, kw, lm=lm: lm.alpha(x, y, kw))
        kw = jax.tree_util.tree_map(jnp.asarray, kw)
        cases[name] = (lambda f=f, kw=kw: f(x, y, kw), None)

    def renderer(n, k, light=lens_light):
        data = ImageData(image_data=np.zeros((n, n)), transform_pix2angle=np.diag([PIX, PIX]),
                         ra_at_xy_0=-(n - 1) / 2 * PIX, dec_at_xy_0=-(n - 1) / 2 * PIX,
                         noise_map=np.full((n, n), SIGMA_NOISE))
        psf = PSF(psf_type="GAUSSIAN", fwhm=FWHM, truncation=TRUNCATE)
        im = ImageModel(data, psf, lens_model_class=LensModel(["SIE", "SHEAR"]),
                        source_model_class=LightModel(["SERSIC_ELLIPSE"]),
                        lens_light_model_class=LightModel(["SERSIC_ELLIPSE"] if light else []),
                        kwargs_numerics={"supersampling_factor": k, "supersampling_convolution": False})
        return lambda kl, ks, kll: im.image(kwargs_lens=kl, kwargs_source=ks, kwargs_lens_light=kll)

    images = {}
    for n, k in IMAGE_CASES:
        f = jax.jit(renderer(n, k))
        kw = kwargs_from([jnp.asarray(v) for v in THETA], lens_light)
        cases[f"image_{n}_k{k}"] = (lambda f=f, kw=kw: f(*kw), None)
        images[(n, k)] = np.asarray(f(*kw))
    # batches: jax.vmap of the model over the lenses' parameters, jitted
    for count, k in BATCH_CASES:
        r = renderer(BATCH_N, k, light=False)
        f = jax.jit(jax.vmap(lambda kl, ks, r=r: r(kl, ks, [])))
        kl, ks = batch_kwargs([jnp.asarray(v) for v in batch_theta(count)])
        cases[f"batch_{count}_k{k}"] = (lambda f=f, kl=kl, ks=ks: f(kl, ks), None)
        images[("batch", count, k)] = np.asarray(f(kl, ks))
    jax_likelihood_cases(cases, renderer(LIKE_N, LIKE_K), lens_light)
    return cases, jax_versions("jaxtronomy"), images


def peer_caustics(args, lens_light):
    import caustics
    import numpy as np
    import torch
    import torch.nn.functional as F
    from caustics import func as cf
    from caustics.lenses.func.nfw import scale_radius_nfw

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.set_default_dtype(torch.float64)
    T = torch.as_tensor
    cases = {}

    def qphi(e1, e2):
        c = torch.sqrt(e1 * e1 + e2 * e2)
        return (1 - c) / (1 + c), 0.5 * torch.atan2(e2, e1)

    g = T(grid_1d(DEFL_N, DEFL_FIELD / DEFL_N))
    x, y = torch.meshgrid(g, g, indexing="xy")
    sie, sh = SIE_SHEAR
    q, phi = qphi(T(sie["e1"]), T(sie["e2"]))

    def defl_sie_shear():
        ax, ay = cf.reduced_deflection_angle_sie(T(sie["center_x"]), T(sie["center_y"]), q, phi,
                                                 T(sie["theta_E"]), x, y)
        sx, sy = cf.reduced_deflection_angle_external_shear(T(0.0), T(0.0), T(sh["gamma1"]), T(sh["gamma2"]), x, y)
        return ax + sx, ay + sy

    qe, phie = qphi(T(EPL["e1"]), T(EPL["e2"]))

    def defl_epl():
        return cf.reduced_deflection_angle_epl(T(EPL["center_x"]), T(EPL["center_y"]), qe, phie,
                                               T(EPL["theta_E"]), T(EPL["gamma"] - 1), x, y, 18)

    # NFW: mass and concentration such that Rs = 5" and alpha_Rs = 0.8" (the
    # work does not depend on them; the values make it the same profile).
    cosmo = caustics.FlatLambdaCDM()
    z_l, z_s = T(0.5), T(1.0)
    d_l = cosmo.angular_diameter_distance(z_l)
    ratio = cosmo.angular_diameter_distance_z1z2(z_l, z_s) / cosmo.angular_diameter_distance(z_s)
    rho_c = cosmo.critical_density(z_l)
    arcsec = math.pi / 180 / 3600
    mass, conc = T(1e13), T(5.0)
    for _ in range(60):
        rs = scale_radius_nfw(rho_c, mass, conc) / d_l / arcsec
        conc = conc * rs / NFW["Rs"]
        a, _ = cf.physical_deflection_angle_nfw(T(0.0), T(0.0), mass, conc, rho_c, d_l,
                                                T(NFW["Rs"]), T(0.0))
        mass = mass * NFW["alpha_Rs"] / (a * ratio)
    nfw_c = (T(NFW["center_x"]), T(NFW["center_y"]), mass, conc, rho_c, d_l)

    def defl_nfw():
        ax, ay = cf.physical_deflection_angle_nfw(*nfw_c, x, y)
        return ax * ratio, ay * ratio

    def nograd(f):
        def g():
            with torch.no_grad():
                return f()
        return g

    with torch.no_grad():
        for name, f in (("defl_sie_shear", defl_sie_shear), ("defl_epl", defl_epl), ("defl_nfw", defl_nfw)):
            cases[name] = (nograd(f), None)
        rs_check = scale_radius_nfw(rho_c, mass, conc) / d_l / arcsec
        a_check = cf.physical_deflection_angle_nfw(T(0.0), T(0.0), mass, conc, rho_c, d_l, T(NFW["Rs"]),
                                                   T(0.0))[0] * ratio
    nfw_note = f"NFW mass {float(mass):.4g} Msun, c {float(conc):.4g}: Rs {float(rs_check):.4f}\", " \
               f"alpha(Rs) {float(a_check):.4f}\""

    # Gaussian filter of scipy.ndimage (mode 'nearest', truncate 5) as two 1-D convolutions.
    sigma = FWHM / (2 * math.sqrt(2 * math.log(2))) / PIX
    r = int(TRUNCATE * sigma + 0.5)
    w = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64) / sigma) ** 2)
    w = w / w.sum()
    wx, wy = w.view(1, 1, 1, -1), w.view(1, 1, -1, 1)

    def renderer(n, k, light=lens_light):
        fx, fy = (T(a) for a in fine_grid(np, n, k))

        # theta: the parameters in NAMES order (without the lens light's when
        # light is False), each a scalar or, for a batch, a (N, 1, 1) tensor
        # (torch broadcasting renders the N lenses at once).
        def render(theta):
            t = dict(zip(NAMES, theta))
            ql, pl = qphi(t[("lens", "e1")], t[("lens", "e2")])
            ax, ay = cf.reduced_deflection_angle_sie(t[("lens", "center_x")], t[("lens", "center_y")], ql, pl,
                                                     t[("lens", "theta_E")], fx, fy)
            sx, sy = cf.reduced_deflection_angle_external_shear(t[("shear", "ra_0")], t[("shear", "dec_0")],
                                                                t[("shear", "gamma1")], t[("shear", "gamma2")],
                                                                fx, fy)
            bx, by = fx - ax - sx, fy - ay - sy

            def sersic(c, u, v):
                qs, ps = qphi(t[(c, "e1")], t[(c, "e2")])
                nn = t[(c, "n_sersic")]
                return cf.brightness_sersic(t[(c, "center_x")], t[(c, "center_y")], qs, ps, nn,
                                            t[(c, "R_sersic")] / torch.sqrt(qs), t[(c, "amp")], u, v,
                                            cf.k_lenstronomy(nn))

            img = sersic("source", bx, by)
            if light:
                img = img + sersic("lens_light", fx, fy)
            # per-pixel flux as lenstronomy and the project: surface brightness x pixel area
            img = img * (PIX * PIX)
            img = img.reshape(-1, 1, n * k, n * k)
            img = F.avg_pool2d(img, k) if k > 1 else img
            img = F.conv2d(F.pad(img, (r, r, 0, 0), mode="replicate"), wx)
            img = F.conv2d(F.pad(img, (0, 0, r, r), mode="replicate"), wy)
            return img.view(n, n) if img.shape[0] == 1 else img.view(-1, n, n)
        return render

    images = {}
    theta0 = T(THETA)
    with torch.no_grad():
        for n, k in IMAGE_CASES:
            f = renderer(n, k)
            cases[f"image_{n}_k{k}"] = (nograd(lambda f=f: f(theta0)), None)
            images[(n, k)] = f(theta0).numpy()
        # batches: the lenses' parameters as (N, 1, 1) tensors, one broadcast pass
        for count, k in BATCH_CASES:
            f = renderer(BATCH_N, k, light=False)
            tb = [T(v).view(-1, 1, 1) for v in batch_theta(count)]
            cases[f"batch_{count}_k{k}"] = (nograd(lambda f=f, tb=tb: f(tb)), None)
            images[("batch", count, k)] = f(tb).numpy()
    render = renderer(LIKE_N, LIKE_K)
    with torch.no_grad():
        data = render(theta0)
    tl = T(liked_theta())

    def value():
        with torch.no_grad():
            return -0.5 * torch.sum(((render(tl) - data) / SIGMA_NOISE) ** 2)

    leaf = tl.clone().requires_grad_(True)

    def value_and_grad():
        leaf.grad = None
        v = -0.5 * torch.sum(((render(leaf) - data) / SIGMA_NOISE) ** 2)
        v.backward()
        return v.detach(), leaf.grad

    cases["loglike_100_k3_value"] = (value, None)
    cases["loglike_100_k3_grad"] = (value_and_grad, None)
    versions = {"caustics": caustics.__version__, "torch": torch.__version__, "note": nfw_note}
    return cases, versions, images


def main():
    args = parse_args()
    pin_threads(args.threads)
    lens_light = not args.no_lens_light
    build = {"lenstronomy": peer_lenstronomy, "herculens": peer_herculens, "jaxtronomy": peer_jaxtronomy,
             "caustics": peer_caustics}[args.peer]
    cases, versions, images = build(args, lens_light)

    def sync(r):
        import jax  # noqa: only for the JAX peers
        return jax.block_until_ready(r)

    sync_fn = sync if args.peer in ("herculens", "jaxtronomy") else (lambda r: r)
    if args.check and args.peer != "lenstronomy":
        import numpy as np
        ref_cases, _, ref = peer_lenstronomy(args, lens_light)

        def flat(r):
            return np.concatenate([np.asarray(a).ravel() for a in (r if isinstance(r, tuple) else (r,))])

        def rel(a, b):
            return float(np.linalg.norm(a - b) / np.linalg.norm(b))

        for key, im in images.items():
            label = f"batch_{key[1]}_k{key[2]}" if key[0] == "batch" else f"image_{key[0]}_k{key[1]}"
            print(f"# check {label}: |{args.peer} - lenstronomy| / |lenstronomy| = "
                  f"{rel(np.asarray(im), ref[key]):.2e}")
        for name in ("defl_sie_shear", "defl_epl", "defl_nfw", "loglike_100_k3_value"):
            if name in cases:
                print(f"# check {name}: |{args.peer} - lenstronomy| / |lenstronomy| = "
                      f"{rel(flat(sync_fn(cases[name][0]())), flat(ref_cases[name][0]())):.2e}")
    rx = re.compile(args.cases)
    out = open(args.json, "a") if args.json else None
    for name, (fn, _) in cases.items():
        base = name.split("@")[0]
        if not rx.search(base):
            continue
        per_call, per_call_cpu = measure(fn, args.repeats, args.min_time, sync_fn)
        pixels = DEFL_N * DEFL_N
        if base.startswith("defl_"):
            unit, scale = "ns/pixel", lambda t: t * 1e9 / pixels
        elif base.startswith("batch_"):
            # images per second of wall time; cpu_values: per second of the
            # process's CPU time (all threads; x threads = the rate the
            # threads would give if nothing else ran)
            count = int(base.split("_")[1])
            unit, scale = "images/s", lambda t: count / t
        else:
            unit, scale = "ms", lambda t: t * 1e3
        vals, cpu_vals = [scale(t) for t in per_call], [scale(t) for t in per_call_cpu]
        peer = args.peer + ("-" + name.split("@")[1] if "@" in name else "")
        rec = {"peer": peer, "case": base, "threads": args.threads, "unit": unit,
               "median": statistics.median(vals), "min": min(vals), "values": vals, "cpu_values": cpu_vals,
               "lens_light": lens_light and not base.startswith("batch_"), "tag": args.tag, "versions": versions,
               "load": open("/proc/loadavg").read().split()[0]}
        line = json.dumps(rec)
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()


if __name__ == "__main__":
    main()
