"""The four sources, their checksums, and the IDX reader and writer."""

import gzip
import hashlib
import shutil

import pytest
import torch

from course_utils import data, sources
from tests.conftest import write_tiny_dataset

FULL_DATA = pytest.mark.skipif(
    not (sources.DEBIAN_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason="needs Debian's dataset-fashion-mnist: sudo apt-get install dataset-fashion-mnist")


# ----------------------------------------------------------------------------- IDX files

def test_read_idx_reads_what_was_written(tmp_path):
    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    labels = torch.arange(300) % 10                                  # int64, as in a Split
    for compress in (False, True):
        suffix = ".gz" if compress else ""
        path = sources.write_idx(tmp_path / ("x" + suffix), images, compress=compress)
        assert torch.equal(sources.read_idx(path), images)
        path = sources.write_idx(tmp_path / ("y" + suffix), labels, compress=compress)
        assert torch.equal(sources.read_idx(path), labels.to(torch.uint8))
    assert sources.read_idx(tmp_path / "x").dtype == torch.uint8


def test_write_idx_header_is_the_idx_format(tmp_path):
    path = sources.write_idx(tmp_path / "labels", torch.tensor([3, 1, 4]))
    # Two zero bytes, 0x08 = unsigned bytes, 1 dimension, its size as big-endian uint32, data.
    assert path.read_bytes() == b"\x00\x00\x08\x01" + b"\x00\x00\x00\x03" + b"\x03\x01\x04"


def test_write_idx_gzip_is_byte_for_byte_reproducible(tmp_path):
    images = torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8)
    first = sources.write_idx(tmp_path / "a" / "x.gz", images, compress=True).read_bytes()
    second = sources.write_idx(tmp_path / "b" / "other-name.gz", images, compress=True)
    assert second.read_bytes() == first, "no time stamp and no file name in the gzip header"
    assert gzip.decompress(first)[:4] == b"\x00\x00\x08\x03"


def test_bundled_files_are_what_write_idx_writes(tmp_path):
    """The bundled .gz files are exactly what scripts/make_mini_dataset.py writes today."""
    for name in sources.BUNDLED_SHA256:
        bundled = sources.BUNDLED_DIR / (name + ".gz")
        tensor = sources.read_idx(bundled)
        again = sources.write_idx(tmp_path / (name + ".gz"), tensor, compress=True)
        assert again.read_bytes() == bundled.read_bytes()


def test_write_idx_is_atomic(tmp_path, monkeypatch):
    """A write that fails half-way leaves the old file whole and no temporary file behind."""
    path = sources.write_idx(tmp_path / "x", torch.zeros(4, 28, 28))
    before = path.read_bytes()

    def disk_full(source, destination):
        raise OSError("No space left on device")
    monkeypatch.setattr(sources.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        sources.write_idx(path, torch.ones(4, 28, 28))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_write_idx_rejects_values_a_byte_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="0-255"):
        sources.write_idx(tmp_path / "x", torch.tensor([0, 256]))
    assert not (tmp_path / "x").exists()


def test_read_idx_rejects_bad_magic_and_truncation(tmp_path):
    (tmp_path / "junk").write_bytes(b"<html>not found</html>")
    with pytest.raises(sources.DataError, match="magic"):
        sources.read_idx(tmp_path / "junk")
    path = sources.write_idx(tmp_path / "ok", torch.zeros(4, 28, 28))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(sources.DataError, match="truncated"):
        sources.read_idx(path)
    good = sources.write_idx(tmp_path / "good", torch.zeros(4, 28, 28))
    with pytest.raises(sources.DataError, match="corrupted"):
        sources.read_idx(good, sha256="0" * 64)


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
    monkeypatch.setitem(sources._LOADERS, "download", sources._from_download)
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
    monkeypatch.setitem(sources._LOADERS, "download", sources._from_download)
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
    sources.write_idx(raw / "train-labels-idx1-ubyte", torch.arange(60_000) % 10)
    with pytest.raises(data.DataError, match="corrupted"):
        data.load_fashion_mnist(isolated_sources, source="cache")


def test_corrupted_debian_file_is_detected_and_skipped(isolated_sources, monkeypatch, capsys):
    debian = isolated_sources.parent / "debian"
    write_tiny_dataset(debian, compress=True)          # right names, wrong contents
    monkeypatch.setattr(sources, "DEBIAN_DIR", debian)
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
    for name, (size, sha256) in sources.BUNDLED_SHA256.items():
        path = sources.BUNDLED_DIR / (name + ".gz")
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
    shutil.copytree(sources.BUNDLED_DIR, copy)
    path = copy / "t10k-labels-idx1-ubyte.gz"
    labels = sources.read_idx(path)
    labels[0] = (labels[0] + 1) % 10
    sources.write_idx(path, labels, compress=True)
    monkeypatch.setattr(sources, "BUNDLED_DIR", copy)
    with pytest.raises(data.DataError, match="corrupted"):
        data.load_fashion_mnist(source="bundled")


@FULL_DATA
def test_bundled_subset_is_a_sample_of_the_real_data(mini, tmp_path):
    full_train, _ = data.load_fashion_mnist(tmp_path, source="debian")
    rows = {bytes(image.numpy()) for image in full_train.images}
    assert all(bytes(image.numpy()) in rows for image in mini[0].images[:200])
