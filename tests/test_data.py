import gzip
import hashlib
import shutil

import pytest
import torch

from course_utils import data
from tests.conftest import write_idx, write_tiny_dataset

FULL_DATA = pytest.mark.skipif(
    not (data.DEBIAN_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason="needs Debian's dataset-fashion-mnist: sudo apt-get install dataset-fashion-mnist")


# ----------------------------------------------------------------------------- IDX files

def test_read_idx_reads_what_was_written(tmp_path):
    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    for compress in (False, True):
        path = write_idx(tmp_path / f"x{compress}.gz" if compress else tmp_path / "x", images,
                         compress)
        assert torch.equal(data.read_idx(path), images)


def test_read_idx_rejects_bad_magic_and_truncation(tmp_path):
    (tmp_path / "junk").write_bytes(b"<html>not found</html>")
    with pytest.raises(data.DataError, match="magic"):
        data.read_idx(tmp_path / "junk")
    path = write_idx(tmp_path / "ok", torch.zeros(4, 28, 28))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(data.DataError, match="truncated"):
        data.read_idx(path)


# ----------------------------------------------------------------------------- sources

def test_cache_source_reads_torchvision_layout(isolated_sources, capsys):
    made = write_tiny_dataset(isolated_sources / "FashionMNIST" / "raw")
    train, test = data.load_fashion_mnist(isolated_sources, source="cache")
    assert torch.equal(train.images, made["train"][0]) and torch.equal(test.labels, made["test"][1])
    assert train.labels.dtype == torch.int64 and train.images.dtype == torch.uint8
    assert train.classes == data.FASHION_MNIST_CLASSES
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [f"Fashion-MNIST: 20 train / 10 test images from the cache "
                     f"{isolated_sources / 'FashionMNIST' / 'raw'}."]


def test_cache_root_from_environment(isolated_sources, monkeypatch):
    write_tiny_dataset(isolated_sources / "FashionMNIST" / "raw", n_train=30)
    monkeypatch.setenv("COURSE_DATA_DIR", str(isolated_sources))
    train, _ = data.load_fashion_mnist()
    assert len(train) == 30


def test_mnist_from_cache(isolated_sources, capsys):
    write_tiny_dataset(isolated_sources / "MNIST" / "raw", n_train=40, n_test=12)
    train, test = data.load_mnist(isolated_sources)
    assert (len(train), len(test)) == (40, 12)
    assert train.classes == data.MNIST_CLASSES and train.mean == data.MNIST_MEAN
    assert "MNIST: 40 train / 12 test images from the cache" in capsys.readouterr().out


def test_mnist_download_path_goes_through_torchvision(isolated_sources, monkeypatch, capsys):
    """The download source asks torchvision for both splits, then reads torchvision's files."""
    from torchvision import datasets

    calls = []

    class FakeMNIST:
        def __init__(self, root, train, download):
            calls.append((train, download))
            if not (isolated_sources / "MNIST" / "raw").exists():
                write_tiny_dataset(isolated_sources / "MNIST" / "raw", n_train=16, n_test=8)

    monkeypatch.setattr(datasets, "MNIST", FakeMNIST)
    monkeypatch.setitem(data._LOADERS, "download", data._from_download)
    train, test = data.load_mnist(isolated_sources, source="download")
    assert calls == [(True, True), (False, True)]
    assert (len(train), len(test)) == (16, 8)
    assert "from a download into" in capsys.readouterr().out


def test_failed_download_falls_through_to_error_listing_every_way(isolated_sources, monkeypatch):
    from torchvision import datasets

    class Offline:
        def __init__(self, *args, **kwargs):
            raise OSError("network is unreachable")

    monkeypatch.setattr(datasets, "FashionMNIST", Offline)
    monkeypatch.setitem(data._LOADERS, "download", data._from_download)
    with pytest.raises(data.DataError) as error:
        data.load_fashion_mnist(isolated_sources)
    message = str(error.value)
    for way in ("FashionMNIST/raw", "COURSE_DATA_DIR", "apt-get install dataset-fashion-mnist",
                "torchvision downloads", "bundled mini subset"):
        assert way in message


def test_forced_source_that_is_absent_says_so(isolated_sources):
    with pytest.raises(data.DataError, match="not available from source='debian'"):
        data.load_mnist(isolated_sources, source="debian")


def test_unknown_source_is_rejected(isolated_sources):
    with pytest.raises(ValueError, match="'cache', 'debian', 'download', 'bundled'"):
        data.load_fashion_mnist(isolated_sources, source="internet")


def test_full_size_cache_file_is_checked_against_published_checksum(isolated_sources):
    raw = isolated_sources / "FashionMNIST" / "raw"
    write_tiny_dataset(raw)
    # A labels file of the published size but with other contents, as after a bit flip.
    write_idx(raw / "train-labels-idx1-ubyte", torch.arange(60_000) % 10)
    with pytest.raises(data.DataError, match="corrupted"):
        data.load_fashion_mnist(isolated_sources, source="cache")


def test_corrupted_debian_file_is_detected_and_skipped(isolated_sources, monkeypatch, capsys):
    debian = isolated_sources.parent / "debian"
    write_tiny_dataset(debian, compress=True)          # right names, wrong contents
    monkeypatch.setattr(data, "DEBIAN_DIR", debian)
    with pytest.raises(data.DataError, match="corrupted"):
        data.load_fashion_mnist(isolated_sources, source="debian")
    # In auto mode the bad source is reported and the next one is tried.
    with pytest.raises(data.DataError, match="was not found"):
        data.load_fashion_mnist(isolated_sources)
    assert "skipping the debian source" in capsys.readouterr().out
    assert not (isolated_sources / "FashionMNIST").exists(), "a corrupted source reached the cache"


@FULL_DATA
def test_debian_source_is_verified_and_cached(tmp_path, capsys):
    train, test = data.load_fashion_mnist(tmp_path, source="debian")
    assert (len(train), len(test)) == (60_000, 10_000)
    assert torch.equal(torch.bincount(train.labels), torch.full((10,), 6_000))
    scaled = train.images.float() / 255
    assert scaled.mean().item() == pytest.approx(data.FASHION_MNIST_MEAN, abs=5e-5)
    assert scaled.std().item() == pytest.approx(data.FASHION_MNIST_STD, abs=5e-5)
    assert "Debian's package dataset-fashion-mnist" in capsys.readouterr().out
    # The decompressed cache now holds the same data, with the published checksums.
    cached_train, _ = data.load_fashion_mnist(tmp_path, source="cache")
    assert torch.equal(cached_train.images, train.images)
    assert "from the cache" in capsys.readouterr().out


# ----------------------------------------------------------------------------- bundled subset

def test_bundled_subset_matches_recorded_checksums_and_budget():
    total = 0
    for name, (size, sha256) in data.BUNDLED_SHA256.items():
        path = data.BUNDLED_DIR / (name + ".gz")
        content = gzip.decompress(path.read_bytes())
        assert len(content) == size and hashlib.sha256(content).hexdigest() == sha256
        total += path.stat().st_size
    assert total < 3_000_000


def test_bundled_subset_is_stratified_and_announced_loudly(mini, capsys):
    data.load_fashion_mnist(source="bundled")
    assert "MINI SUBSET" in capsys.readouterr().out
    train, test = mini
    assert torch.equal(torch.bincount(train.labels), torch.full((10,), 500))
    assert torch.equal(torch.bincount(test.labels), torch.full((10,), 100))


def test_corrupted_bundled_file_is_detected(tmp_path, monkeypatch):
    copy = tmp_path / "mini"
    shutil.copytree(data.BUNDLED_DIR, copy)
    path = copy / "t10k-labels-idx1-ubyte.gz"
    labels = data.read_idx(path)
    labels[0] = (labels[0] + 1) % 10
    write_idx(path, labels, compress=True)
    monkeypatch.setattr(data, "BUNDLED_DIR", copy)
    with pytest.raises(data.DataError, match="corrupted"):
        data.load_fashion_mnist(source="bundled")


@FULL_DATA
def test_bundled_subset_is_a_sample_of_the_real_data(mini, tmp_path):
    full_train, _ = data.load_fashion_mnist(tmp_path, source="debian")
    rows = {bytes(image.numpy()) for image in full_train.images}
    assert all(bytes(image.numpy()) in rows for image in mini[0].images[:200])


# ----------------------------------------------------------------------------- subsets and splits

def test_subset_argument_is_stratified_and_seeded(mini):
    train, _ = mini
    small = data.stratified_subset(train, 105, seed=3)
    counts = torch.bincount(small.labels, minlength=10)
    assert counts.sum() == 105 and counts.max() - counts.min() <= 1
    assert torch.equal(data.stratified_subset(train, 105, seed=3).images, small.images)
    assert not torch.equal(data.stratified_subset(train, 105, seed=4).labels, small.labels)


def test_train_val_split_is_disjoint_and_seeded(mini):
    train, _ = mini
    part, val = data.train_val_split(train, val_size=0.2, seed=1)
    assert (len(part), len(val)) == (4000, 1000)
    keys = lambda split: {bytes(x.numpy()) for x in split.images}  # noqa: E731
    assert not keys(part) & keys(val)
    again, _ = data.train_val_split(train, val_size=0.2, seed=1)
    assert torch.equal(again.images, part.images)
    with pytest.raises(ValueError, match="leaves no"):
        data.train_val_split(train, val_size=len(train))


# ----------------------------------------------------------------------------- TensorLoader

def _indexed_split(n):
    """A split whose pixel 0 and 1 encode the sample's index, so batches reveal their rows."""
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images[:, 0, 0], images[:, 0, 1] = torch.arange(n) % 256, torch.arange(n) // 256
    return data.Split(images, torch.arange(n) % 10, data.FASHION_MNIST_CLASSES,
                      data.FASHION_MNIST_MEAN, data.FASHION_MNIST_STD)


def _rows(batch, split):
    pixels = torch.round((batch[:, 0, 0, :2] * split.std + split.mean) * 255).long()
    return (pixels[:, 0] + 256 * pixels[:, 1]).tolist()


def _epoch(loader, split):
    return [row for X, _ in loader for row in _rows(X, split)]


def test_loader_covers_every_sample_once_per_epoch():
    split = _indexed_split(1000)
    loader = data.TensorLoader(split, 64, shuffle=True, seed=0)
    assert len(loader) == 16
    first, second = _epoch(loader, split), _epoch(loader, split)
    assert sorted(first) == sorted(second) == list(range(1000))
    assert first != second, "each epoch should have its own order"


def test_loader_order_depends_only_on_seed_and_epoch():
    split = _indexed_split(300)
    a, b = (data.TensorLoader(split, 32, shuffle=True, seed=7) for _ in range(2))
    assert _epoch(a, split) == _epoch(b, split)
    a.set_epoch(5), b.set_epoch(5)
    assert _epoch(a, split) == _epoch(b, split)
    other = data.TensorLoader(split, 32, shuffle=True, seed=8)
    assert _epoch(other, split) != _epoch(data.TensorLoader(split, 32, shuffle=True, seed=7), split)
    assert _epoch(data.TensorLoader(split, 32), split) == list(range(300))


def test_loader_drop_last_and_batch_contents():
    split = _indexed_split(100)
    loader = data.TensorLoader(split, 32, shuffle=True, drop_last=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert all(X.shape == (32, 1, 28, 28) and y.shape == (32,) for X, y in batches)
    assert len(data.TensorLoader(split, 32)) == 4
    X, y = batches[0]
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    rows = _rows(X, split)
    assert torch.equal(y, split.labels[rows])
    expected = (split.images[rows].float() / 255 - split.mean) / split.std
    assert torch.allclose(X[:, 0], expected, atol=1e-6)


def test_loader_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        data.TensorLoader(_indexed_split(10), 0)
