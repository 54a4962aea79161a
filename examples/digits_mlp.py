"""A small multi-layer perceptron in numpy, trained on scikit-learn's digits (1,797 8x8 images).

Shared by the examples: real training, CPU only, a fraction of a second per epoch.
"""
from __future__ import annotations

import numpy as np


def load_digits_split(seed: int = 0):
    """Standardised train/validation split of the digits data that ships with scikit-learn."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.data.astype(np.float64) / 16.0
    y = data.target
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(0.8 * len(x))
    mean, std = x[:cut].mean(0), x[:cut].std(0) + 1e-6
    x = (x - mean) / std
    return x[:cut], y[:cut], x[cut:], y[cut:]


class MLP:
    """ReLU layers, softmax output, SGD with momentum and L2 weight decay."""

    def __init__(self, sizes: list[int], seed: int = 0):
        rng = np.random.default_rng(seed)
        self.weights = [rng.normal(0, np.sqrt(2.0 / a), (a, b)) for a, b in zip(sizes, sizes[1:])]
        self.biases = [np.zeros(b) for b in sizes[1:]]
        self.velocity = [np.zeros_like(p) for p in self.weights + self.biases]

    def forward(self, x):
        activations = [x]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = x @ w + b
            if i < len(self.weights) - 1:
                x = np.maximum(x, 0)
            activations.append(x)
        return activations

    def loss(self, x, y):
        logits = self.forward(x)[-1]
        logits = logits - logits.max(1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        loss = -log_probs[np.arange(len(y)), y].mean()
        accuracy = float((logits.argmax(1) == y).mean())
        return float(loss), accuracy

    def train_epoch(self, x, y, lr, momentum, l2, batch, rng, average=None, shard=(0, 1)):
        """One epoch of SGD in mini-batches of ``batch`` rows.

        Data parallel: with ``shard=(rank, size)`` this process takes every size-th row of each
        batch, and ``average(grads)`` (an allreduce over the ranks) turns its gradients into the
        batch's; every rank draws the same ``rng`` order, so all apply the same step.
        """
        rank, size = shard
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch][rank::size]
            grads = self.gradients(x[idx], y[idx], l2)
            if average is not None:
                grads = average(grads)
            self.apply(grads, lr, momentum)

    def gradients(self, x, y, l2):
        """Gradients of the mean loss over ``x`` (plus L2) for weights then biases."""
        acts = self.forward(x)
        logits = acts[-1] - acts[-1].max(1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(1, keepdims=True)
        probs[np.arange(len(y)), y] -= 1
        grad = probs / max(len(y), 1)
        grads_w, grads_b = [], []
        for i in range(len(self.weights) - 1, -1, -1):
            grads_w.append(acts[i].T @ grad + l2 * self.weights[i])
            grads_b.append(grad.sum(0))
            if i:
                grad = (grad @ self.weights[i].T) * (acts[i] > 0)
        return grads_w[::-1] + grads_b[::-1]

    def apply(self, grads, lr, momentum):
        """One SGD-with-momentum step (gradients clipped to [-5, 5])."""
        for p, g, v in zip(self.weights + self.biases, grads, self.velocity):
            v *= momentum
            v -= lr * np.clip(g, -5, 5)
            p += v

    def state(self) -> dict:
        return {"weights": {str(i): w for i, w in enumerate(self.weights)},
                "biases": {str(i): b for i, b in enumerate(self.biases)},
                "velocity": {str(i): v for i, v in enumerate(self.velocity)}}

    def load(self, state: dict) -> None:
        n = len(self.weights)
        self.weights = [state["weights"][str(i)] for i in range(n)]
        self.biases = [state["biases"][str(i)] for i in range(n)]
        self.velocity = [state["velocity"][str(i)] for i in range(2 * n)]
