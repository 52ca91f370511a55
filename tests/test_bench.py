"""The benchmark on a tiny configuration: real images from the bundled subset, a few steps each,
nothing downloaded. Takes a few seconds."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from course_utils import data, sources

BENCH_PATH = Path(__file__).parents[1] / "benchmarks" / "bench_epoch.py"
spec = importlib.util.spec_from_file_location("bench_epoch", BENCH_PATH)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.fixture(autouse=True)
def one_thread():
    """One CPU thread: on a busy machine two threads can be several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny(mini, tmp_path):
    """128 train and 64 test images of the mini subset, also written in torchvision's layout."""
    train, test = mini
    train = data.stratified_subset(train, 128, seed=0)
    test = data.stratified_subset(test, 64, seed=0)
    return bench.write_torchvision_layout(tmp_path / "data", train, test), train, test


def test_both_pipelines_feed_the_model_the_same_numbers(tiny):
    root, train, _ = tiny
    dataset = bench.plain_loader(root, batch_size=8).dataset
    plain = torch.stack([dataset[i][0] for i in range(8)])          # (8, 1, 28, 28)
    X, y = next(iter(data.TensorLoader(train, 8)))
    assert X.shape == plain.shape
    assert torch.allclose(X, plain, atol=1e-5)
    assert y.tolist() == [dataset[i][1] for i in range(8)]


def test_the_pipelines_differ_in_the_batch_layout_only(tiny):
    """(a) feeds a DataLoader's NCHW batches, (b) TensorLoader's channels-last ones: the same
    numbers, the same seeded weights, and (b)'s feature maps come out channels-last."""
    root, train, _ = tiny
    plain, _ = bench.new_model("cpu", seed=0)
    course, _ = bench.new_model("cpu", seed=0)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                 course.state_dict().values()))
    X_plain, _ = next(iter(bench.plain_loader(root, 8)))
    X_course, _ = next(iter(data.TensorLoader(train, 8)))
    conv = course.features.conv1
    assert not conv(X_plain).is_contiguous(memory_format=torch.channels_last)
    assert conv(X_course).is_contiguous(memory_format=torch.channels_last)


def test_batch_stream_runs_across_epochs_and_counts_images(tiny):
    _, train, _ = tiny
    stream = bench.BatchStream(data.TensorLoader(train, 48))          # batches of 48, 48, 32
    sizes = [len(y) for _, y in stream.take(5)]
    assert sizes == [48, 48, 32, 48, 48]
    assert stream.images == sum(sizes)
    stream.close()


def test_run_benchmark_reports_both_pipelines(tiny):
    root, train, test = tiny
    result = bench.run_benchmark(root, train, test, device="cpu", batch_size=16, steps=5,
                                 warmup=2, repeats=2, full_epoch=True, accuracy=True)
    plain, course = result["plain"], result["course"]
    for row in (plain, course):
        assert len(row["runs_images_per_second"]) == 2
        assert row["images_per_second"] == max(row["runs_images_per_second"]) > 0
        assert row["full_epoch_seconds"] > 0
        assert 0.0 <= row["test_accuracy"] <= 1.0
    assert result["ratio"] == pytest.approx(course["images_per_second"]
                                            / plain["images_per_second"])
    assert result["model_only_ratio"] == pytest.approx(result["model_only_images_per_second"]
                                                    / plain["images_per_second"])


def test_main_writes_json_and_prints_a_table_with_both_rows(tiny, tmp_path, capsys):
    root, _, _ = tiny
    path = tmp_path / "results.json"
    bench.main(["--device", "cpu", "--root", str(root), "--batch-size", "16", "--steps", "3",
                "--warmup", "1", "--repeats", "1", "--json", str(path)])
    saved = json.loads(path.read_text())
    assert {"date", "device", "device_name", "torch", "threads", "batch_size", "steps",
            "repeats", "workers", "memory_kind", "plain", "course", "ratio",
            "command"} <= saved.keys()
    assert {"images_per_second", "runs_images_per_second", "peak_memory_mib",
            "full_epoch_seconds", "test_accuracy"} <= saved["plain"].keys()
    assert saved["batch_size"] == 16 and saved["steps"] == 3
    assert saved["ratio"] == pytest.approx(saved["course"]["images_per_second"]
                                           / saved["plain"]["images_per_second"])
    assert saved["plain"]["full_epoch_seconds"] is None     # off by default on the CPU

    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.startswith("|")]
    assert len(table) == 4                                  # header, rule, (a), (b)
    assert bench.PLAIN in table[2] and bench.COURSE in table[3]
    assert "128 train" in printed                           # read from the tiny cache
    assert f"Command: python benchmarks/bench_epoch.py --device cpu --root {root}" in printed
    assert "The model alone, on batches made in advance" in printed
    assert saved["model_only_ratio"] > 0


def test_main_runs_on_the_bundled_subset_when_nothing_else_is_there(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sources, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setitem(sources._LOADERS, "download", lambda folder, root: None)   # offline
    result = bench.main(["--device", "cpu", "--root", str(tmp_path / "empty"), "--batch-size",
                         "16", "--steps", "2", "--warmup", "0", "--repeats", "1"])
    printed = capsys.readouterr().out
    assert "MINI SUBSET" in printed
    assert result["train_images"] == 5000
    assert result["plain"]["images_per_second"] > 0 and result["course"]["images_per_second"] > 0
