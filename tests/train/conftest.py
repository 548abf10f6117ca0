"""Toy volumes for the training tests: the class is where a bright cube sits."""

import numpy as np
import pytest


def toy_volumes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 32^3 volumes: class 0 has no cube, 1 a cube on the left, 2 on the right."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.2, 0.05, (n, 32, 32, 32)).astype(np.float32)
    y = np.arange(n) % 3
    for i, label in enumerate(y):
        if label:
            c = 8 if label == 1 else 22
            x[i, 12:20, 12:20, c - 3 : c + 3] = 1.0
    return x, y


@pytest.fixture
def toy():
    """The `toy_volumes` maker."""
    return toy_volumes
