"""Optimizers over Parameter objects (torch.optim-like)."""
import numpy as np


class SGD:
    """Plain SGD: p.data -= lr * p.grad for every parameter.

    At construction the parameters' .data and .grad become views into two flat arrays (values
    kept), so a step is one fused update; arrays taken from the model afterwards (state_dict(),
    p.data) stay the live ones for the optimizer's life.
    """

    def __init__(self, params, lr):
        self.params = list(params)
        self.data = np.concatenate([p.data.ravel() for p in self.params])
        self.grad = np.zeros_like(self.data)
        self._update = np.empty_like(self.data)
        self.lr = lr
        offset = 0
        for p in self.params:
            size, shape = p.data.size, p.data.shape
            p.data = self.data[offset:offset + size].reshape(shape)
            p.grad = self.grad[offset:offset + size].reshape(shape)
            offset += size

    @property
    def lr(self):
        return float(self._lr)

    @lr.setter
    def lr(self, value):
        self._lr = np.asarray(value, self.data.dtype)  # a 0-d array: cheaper to apply than a float

    def step(self):
        np.multiply(self.grad, self._lr, out=self._update)
        self.data -= self._update
