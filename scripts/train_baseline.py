"""Train the series' baseline: LeNet with BatchNorm and Dropout 0.25 on Fashion-MNIST.

    python scripts/train_baseline.py [--epochs 3] [--subset N]

SGD lr 0.01, momentum 0.9, batch 64, seed 0, on the whole training set; accuracy is measured
on the 10,000 test images after every epoch.
"""

import argparse
import time

import torch

from course_utils import data, models, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subset", type=int, default=None, help="images per split (fast check)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    training.set_seed(args.seed)
    device = training.get_device()
    train, test = data.load_fashion_mnist(subset=args.subset, seed=args.seed)
    train_loader = data.TensorLoader(train, 64, shuffle=True, device=device, seed=args.seed)
    test_loader = data.TensorLoader(test, 1000, device=device)
    model = models.LeNet(batch_norm=True, dropout=0.25).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    start = time.perf_counter()
    history = training.fit(model, train_loader, test_loader, optimizer, epochs=args.epochs)
    seconds = time.perf_counter() - start
    for record in history.records:      # the test split stands in for validation here
        print(", ".join(f"{name.replace('val_', 'test_')} {value:.4g}"
                        for name, value in record.items()))
    print(f"Test accuracy after {len(history)} epochs: {history.val_acc[-1]:.2%} "
          f"({seconds:.0f} s on {device}, {torch.get_num_threads()} CPU threads).")


if __name__ == "__main__":
    main()
