"""FCDNN-8 and FCDNN-16 autoencoders with the paper's layer sizes, trained on scikit-learn's bundled digits.

The paper trains them on MNIST (28x28); MNIST cannot be had offline here, so the bundled 8x8 digits
(1,797 images, `sklearn.datasets.load_digits`) stand in: input and output are 64 pixels scaled to [0, 1].
Hidden layers use ReLU as in the paper; the output layer is linear. Training is deterministic (fixed seeds,
deterministic torch algorithms, one thread) and takes seconds on a CPU.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

ENCODERS = {
    "fcdnn-8": [64, 128, 256, 32],
    "fcdnn-16": [64, 128, 256, 512, 256, 128, 64, 32],
}


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) pixel matrices in [0, 1]; a fixed 80/20 split."""
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32) / 16.0
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    cut = int(0.8 * len(x))
    return torch.from_numpy(x[order[:cut]]), torch.from_numpy(x[order[cut:]])


def build(name: str, n_in: int = 64) -> nn.Sequential:
    enc = ENCODERS[name]
    hidden = enc + enc[::-1]  # symmetric decoder: 8 or 16 hidden layers
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_in))
    return nn.Sequential(*layers)


def train(name: str, epochs: int, seed: int = 0) -> tuple[nn.Sequential, torch.Tensor, float]:
    """The trained autoencoder, the held-out inputs and its held-out reconstruction MSE."""
    torch.manual_seed(seed)
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        x_train, x_test = digits()
        model = build(name)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(x_train), generator=gen)
            for i in range(0, len(order), 64):
                batch = x_train[order[i:i + 64]]
                opt.zero_grad()
                loss = nn.functional.mse_loss(model(batch), batch)
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            mse = float(nn.functional.mse_loss(model(x_test), x_test))
    finally:
        torch.use_deterministic_algorithms(prev)
    return model, x_test, mse


def linears(model: nn.Sequential) -> list[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)]
