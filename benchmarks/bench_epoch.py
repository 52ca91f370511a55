"""Time the plain torchvision pipeline against course_utils' TensorLoader, side by side.

    python benchmarks/bench_epoch.py [--device cpu] [--batch-size 64] [--steps 300] [--repeats 3]
        [--workers 0] [--threads N] [--full-epoch] [--accuracy] [--json results.json]

Both pipelines train the same model in one process, on the same device, with the same batch size
and number of steps: the Regularization chapter's LeNet with BatchNorm and Dropout 0.25, SGD lr
0.01 momentum 0.9, each pipeline with its own copy seeded the same way (the same weights).

(a) plain: torchvision's FashionMNIST with ToTensor + Normalize((0.2860,), (0.3530,)), a
    DataLoader(batch_size, shuffle=True, num_workers=--workers) and the tutorial loop, which reads
    `loss.item()` after every batch. The source material's data code is not in this repository, so
    Normalize is assumed: the course normalizes with the same mean and std, so both pipelines feed
    the model the same numbers (tests/test_bench.py checks this). Its batches come in torch's
    default memory format (NCHW), as a DataLoader makes them.
(b) course_utils' default path, what a notebook gets without any flag: data.TensorLoader +
    training.train_one_epoch. TensorLoader's batches are laid out channels-last (the same bytes,
    one channel), so the convolutions, BatchNorm and pooling run in their channels-last kernels.

How it is timed: each pipeline draws batches from one endless stream (epoch after epoch, as in
training), runs --warmup untimed steps, then --repeats timed runs of --steps steps; the two
pipelines take turns, and the best run of each is reported (the one least disturbed by other
work). Clocks are read with time.perf_counter() after torch.cuda.synchronize() on a GPU.
`--full-epoch` (default on CUDA) also times one whole pass over the 60,000 images, including the
start of the loader. `--accuracy` trains a fresh model with each pipeline for one epoch and
reports test accuracy, to show the faster pipeline learns as well: a few minutes on a CPU. The
two shuffle differently (DataLoader draws from torch's global generator, TensorLoader from its
own), so with the same seed they still differ about as much as two seeds do.

Peak memory: on CUDA, torch.cuda.max_memory_allocated during the timed runs (TensorLoader's copy of
the training images on the GPU included). On a CPU, the process's peak resident set size (VmHWM,
reset before each run through /proc/self/clear_refs on Linux); both pipelines' images are loaded
in the process during both runs, so on a CPU this number mostly shows the process, not a
difference between pipelines. DataLoader workers' memory is not counted.

The model alone: the same model and loop also train on batches made before the clock starts (no
pipeline at all), taking turns with (a) and (b). When (b) runs at about that speed, its loader
costs nothing measurable and the model's arithmetic, not the data, sets (b)'s ratio to (a).

Reading the numbers: on a CPU at batch 64 the model's own arithmetic takes most of each step, so
(b) gains less there than on a GPU, where decoding images in Python sets the pace. On a busy
machine torch's default of one thread per core can be several times slower than --threads 1;
the script prints a note when repeated runs disagree.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import platform
import resource
import shlex
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from torch import nn

from course_utils import data, models, sources, training

PLAIN = "(a) torchvision + DataLoader"
COURSE = "(b) course_utils default: TensorLoader (channels-last batches)"


# ----------------------------------------------------------------------------- the two pipelines

def plain_loader(root, batch_size: int, workers: int = 0) -> torch.utils.data.DataLoader:
    """(a) as tutorials write it: decode and normalize every image in Python, every epoch."""
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.2860,), (0.3530,))])
    dataset = datasets.FashionMNIST(str(root), train=True, download=False, transform=transform)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                       num_workers=workers)


def plain_train(model, loader, optimizer, device) -> float:
    """(a)'s loop, as tutorials write it: one host sync per batch through loss.item()."""
    criterion = nn.CrossEntropyLoss()
    model.train()
    running_loss = 0.0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    return running_loss


def course_train(model, loader, optimizer, device) -> float:
    """(b): the library's own loop, exactly what `training.fit` runs each epoch."""
    return training.train_one_epoch(model, loader, optimizer)[0]


class BatchStream:
    """Batches from `loader`, epoch after epoch, counting the images handed out."""

    def __init__(self, loader):
        self.loader, self.images = loader, 0
        self._batches = self._forever()

    def _forever(self):
        while True:
            for X, y in self.loader:
                self.images += len(y)
                yield X, y

    def take(self, steps: int):
        return itertools.islice(self._batches, steps)

    def close(self) -> None:
        self._batches.close()       # ends the loader's iterator, and its workers with it


def new_model(device, seed: int):
    """The same LeNet for both pipelines, seeded the same way."""
    training.set_seed(seed)
    model = models.LeNet(batch_norm=True, dropout=0.25).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


# ----------------------------------------------------------------------------- clocks and memory

def synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def memory_kind(device) -> str:
    if device.type == "cuda":
        return "CUDA max_memory_allocated"
    if device.type == "cpu":
        return "process peak RSS"
    return "not measured"


def reset_peak_memory(device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elif device.type == "cpu":
        try:
            Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM restarts at VmRSS
        except OSError:
            pass    # elsewhere the peak covers the whole process so far


def peak_memory_mib(device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if device.type != "cpu":
        return None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024          # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024   # bytes on macOS, else kB


def timed(device, run) -> tuple[float, float | None]:
    """Seconds that `run()` takes, and the peak memory while it ran."""
    synchronize(device)
    reset_peak_memory(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start, peak_memory_mib(device)


def device_name(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        model = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        threads = torch.get_num_threads()
        return f"CPU {model}, {threads} thread{'s' if threads > 1 else ''}"
    return device.type.upper()


# ----------------------------------------------------------------------------- the benchmark

def run_benchmark(root, train: data.Split, test: data.Split, *, device, batch_size: int = 64,
                  steps: int = 300, warmup: int = 20, repeats: int = 3, workers: int = 0,
                  full_epoch: bool = False, accuracy: bool = False,
                  seed: int = 0) -> dict:
    """Time (a) and (b). `root` holds `train` in torchvision's layout; `test` is used only for
    `accuracy`. Returns a plain dict: the settings, then for "plain" (a) and "course" (b)
    images_per_second (the best run), runs_images_per_second, peak_memory_mib,
    full_epoch_seconds and test_accuracy (None when not measured), and "ratio", (b) / (a)."""
    device = torch.device(device)
    loaders = {PLAIN: plain_loader(root, batch_size, workers),
               COURSE: data.TensorLoader(train, batch_size, shuffle=True, device=device,
                                         seed=seed)}
    trains = {PLAIN: plain_train, COURSE: course_train}
    if len(loaders[PLAIN].dataset) != len(train):
        raise ValueError(f"{root} holds {len(loaders[PLAIN].dataset):,} training images, the "
                         f"split {len(train):,}: the pipelines would not see the same data.")
    results = {name: {"runs_images_per_second": [], "peak_memory_mib": None,
                      "full_epoch_seconds": None, "test_accuracy": None} for name in loaders}
    setups = {}
    for name, loader in loaders.items():
        model, optimizer = new_model(device, seed)
        stream = BatchStream(loader)
        if warmup:
            trains[name](model, stream.take(warmup), optimizer, device)  # not timed
        setups[name] = model, optimizer, stream
    # The model alone: the same model and loop on batches made before the clock starts, no
    # pipeline at all: what training costs when the data costs nothing.
    ready = list(BatchStream(data.TensorLoader(train, batch_size, shuffle=True, device=device,
                                               seed=seed)).take(steps))
    bare_model, bare_optimizer = new_model(device, seed)
    if warmup:
        course_train(bare_model, ready[:warmup], bare_optimizer, device)  # not timed
    model_only = []

    for repeat in range(repeats):
        order = list(loaders) if repeat % 2 == 0 else list(loaders)[::-1]   # take turns
        model_only.append(len(ready) * batch_size / timed(device, partial(
            course_train, bare_model, ready, bare_optimizer, device))[0])
        for name in order:
            model, optimizer, stream = setups[name]
            before = stream.images
            seconds, peak = timed(device, partial(trains[name], model, stream.take(steps),
                                                  optimizer, device))
            result = results[name]
            result["runs_images_per_second"].append((stream.images - before) / seconds)
            if peak is not None:
                result["peak_memory_mib"] = max(result["peak_memory_mib"] or 0.0, peak)

    for name, loader in loaders.items():
        model, optimizer, stream = setups[name]
        stream.close()
        if full_epoch:
            results[name]["full_epoch_seconds"] = timed(
                device, partial(trains[name], model, loader, optimizer, device))[0]
        if accuracy:    # a fresh model, one epoch, the same evaluation for both
            model, optimizer = new_model(device, seed)
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(0)     # the order a fresh TensorLoader would give
            trains[name](model, loader, optimizer, device)
            test_loader = data.TensorLoader(test, 1000, device=device)
            results[name]["test_accuracy"] = training.evaluate(model, test_loader)[1]
        runs = results[name]["runs_images_per_second"]
        results[name]["images_per_second"] = max(runs) if runs else None

    plain, course = results[PLAIN]["images_per_second"], results[COURSE]["images_per_second"]
    return {
        "date": datetime.date.today().isoformat(), "device": str(device),
        "device_name": device_name(device), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "batch_size": batch_size, "steps": steps,
        "warmup": warmup, "repeats": repeats, "workers": workers, "seed": seed,
        "train_images": len(train), "memory_kind": memory_kind(device),
        "plain": results[PLAIN], "course": results[COURSE],
        "ratio": course / plain if plain and course else None,
        # The model alone, on batches made in advance (best run), and its ratio to (a).
        "model_only_images_per_second": max(model_only),
        "model_only_ratio": max(model_only) / plain if plain else None,
    }


def markdown_table(result: dict) -> str:
    """Two rows, (a) and (b), ready to paste into the README."""
    def cell(value, form, unit=""):
        return "–" if value is None else format(value, form) + unit

    columns = ["date", "device", "torch", "batch", "steps", "pipeline", "images/s", "× (a)",
               f"peak memory ({result['memory_kind']})", "full epoch", "test accuracy"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    workers = f", num_workers={result['workers']}" if result["workers"] else ""
    for key, name, ratio in (("plain", PLAIN + workers, 1.0), ("course", COURSE, result["ratio"])):
        row = result[key]
        lines.append(
            f"| {result['date']} | {result['device_name']} | {result['torch']} "
            f"| {result['batch_size']} | {result['steps']} × best of {result['repeats']} "
            f"| {name} "
            f"| {cell(row['images_per_second'], ',.0f')} | {cell(ratio, '.2f')} "
            f"| {cell(row['peak_memory_mib'], ',.0f', ' MiB')} "
            f"| {cell(row['full_epoch_seconds'], '.1f', ' s')} "
            f"| {cell(row['test_accuracy'], '.2%')} |")
    return "\n".join(lines)


def write_torchvision_layout(root, train: data.Split, test: data.Split) -> Path:
    """Write both splits as the four IDX files torchvision reads from <root>/FashionMNIST/raw."""
    raw = Path(root) / "FashionMNIST" / "raw"
    for name, split in (("train", train), ("test", test)):
        for filename, tensor in zip(sources.FILES[name], (split.images, split.labels)):
            sources.write_idx(raw / filename, tensor)
    return Path(root)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="default: training.get_device()")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--workers", type=int, default=0, help="(a)'s DataLoader num_workers")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--full-epoch", action=argparse.BooleanOptionalAction, default=None,
                        help="also time one whole epoch (default: on with CUDA)")
    parser.add_argument("--accuracy", action="store_true",
                        help="train each pipeline 1 epoch, report test accuracy (minutes on CPU)")
    parser.add_argument("--root", default=None,
                        help="data folder (default: $COURSE_DATA_DIR or ~/.cache/course_utils)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    if min(args.batch_size, args.steps, args.repeats) < 1 or args.warmup < 0:
        parser.error("--batch-size, --steps and --repeats must be at least 1, --warmup at least 0.")

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else training.get_device()
    full_epoch = device.type == "cuda" if args.full_epoch is None else args.full_epoch
    root = Path(args.root).expanduser() if args.root else sources.default_root()
    train, test = data.load_fashion_mnist(root)
    if not all((root / "FashionMNIST" / "raw" / name).is_file()
               for pair in sources.FILES.values() for name in pair):
        # The data came from somewhere torchvision cannot read (e.g. the bundled subset);
        # the folder is deleted when the script ends.
        scratch = tempfile.TemporaryDirectory(prefix="bench-")
        root = write_torchvision_layout(scratch.name, train, test)
    result = run_benchmark(root, train, test, device=device, batch_size=args.batch_size,
                           steps=args.steps, warmup=args.warmup, repeats=args.repeats,
                           workers=args.workers, full_epoch=full_epoch,
                           accuracy=args.accuracy,
                           seed=args.seed)
    result["command"] = shlex.join(["python", *(sys.argv if argv is None else
                                                ["benchmarks/bench_epoch.py", *argv])])
    print(markdown_table(result))
    print(f"\nCommand: {result['command']}")
    if result["model_only_ratio"]:
        model_only = result["model_only_images_per_second"]
        share = result["course"]["images_per_second"] / model_only
        print(f"The model alone, on batches made in advance: {model_only:,.0f} images/s, "
              f"{result['model_only_ratio']:.2f} × (a); (b) runs at {share:.0%} of that. "
              + ("(b)'s loader costs next to nothing: the model's own arithmetic, not the data, "
                 "bounds the ratio on this machine." if share >= 0.95 else
                 f"(b)'s loader costs it about {1 - share:.0%}."))
    spread = max(max(runs) / min(runs) for runs in (result["plain"]["runs_images_per_second"],
                                                    result["course"]["runs_images_per_second"]))
    if spread > 1.2:
        print(f"Note: runs of one pipeline differ by up to {spread - 1:.0%}: other work was "
              "probably running. The best run counts; rerun on an idle machine to be sure.")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"Results written to {args.json}")
    return result


if __name__ == "__main__":
    main()
