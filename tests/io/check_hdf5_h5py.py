"""Reads a training set written by lensing::io::Hdf5TrainingSetWriter with h5py.

Usage: check_hdf5_h5py.py <hdf5_h5py_sample program> <file.h5>
Runs the program to write the file, then checks shapes, dtypes, values, label
names and attributes.  Exits 77 (ctest: skipped) when h5py is not installed.
"""
import subprocess
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"skipped: h5py/numpy not available ({e}); scripts/deps.sh installs python3-h5py")
    sys.exit(77)

program, path = sys.argv[1], sys.argv[2]
subprocess.run([program, path], check=True)
n, ny, nx = 11, 5, 4
with h5py.File(path, "r") as f:
    images, labels = f["images"], f["labels"]
    assert images.shape == (n, ny, nx) and images.dtype == np.float32, (images.shape, images.dtype)
    assert labels.shape == (n, 3) and labels.dtype == np.float64, (labels.shape, labels.dtype)
    assert images.maxshape == (None, ny, nx) and images.chunks == (4, ny, nx), (images.maxshape, images.chunks)
    assert images.compression == "gzip" and images.shuffle and images.fletcher32
    i, y, x = np.meshgrid(np.arange(n), np.arange(ny), np.arange(nx), indexing="ij")
    expected = (1000 * i + 10 * y + 0.5 * x).astype(np.float32)
    assert np.array_equal(images[()], expected), "image values differ"
    k = np.arange(n, dtype=np.float64)
    assert np.array_equal(labels[()], np.stack([k, k + 0.125, -k], axis=1)), "label values differ"
    assert list(f["label_names"].asstr()[()]) == ["theta_E", "e1", "e2"], f["label_names"][()]
    # Strings are fixed-length UTF-8: h5py gives bytes.
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    assert attrs == {"preset": "HST-like", "seed": 0x8000000000000005, "pixel_scale": 0.05, "n_bands": -3}, attrs
    assert attrs["seed"].dtype == np.uint64 and attrs["n_bands"].dtype == np.int64
    # Appendable: h5py can extend it.
with h5py.File(path, "a") as f:
    f["images"].resize(n + 1, axis=0)
    assert f["images"].shape[0] == n + 1
print(f"h5py {h5py.__version__} (HDF5 {h5py.version.hdf5_version}) reads {path}: ok")
