"""Optimizers over Parameter objects (torch.optim-like): SGD (the lecture's) and AdamW
(makemore.py's).

At construction the parameters' .data and .grad become views into two flat arrays (values kept),
so a step is a few fused passes over every parameter at once; arrays taken from the model
afterwards (state_dict(), p.data) stay the live ones for the optimizer's life. Backward passes
must write gradients in place (the layer protocol does).

``state_dict()`` / ``load_state_dict()``: what a resumed run needs besides the parameters and the
settings (nothing for SGD; the step count and both moments for AdamW), so that a run resumed from
them is bitwise identical to one that never stopped.
"""
import numpy as np

MAKEMORE = dict(lr=5e-4, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01)  # makemore.py's AdamW


class _Flat:
    """The parameters' values and gradients as views of two flat arrays."""

    def __init__(self, params):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} needs at least one parameter")
        dtypes = {p.data.dtype for p in self.params}
        if len(dtypes) != 1:
            raise ValueError(f"{type(self).__name__} needs parameters of one dtype, got {sorted(map(str, dtypes))}")
        self.data = np.concatenate([p.data.ravel() for p in self.params])
        self.grad = np.zeros_like(self.data)
        offset = 0
        for p in self.params:
            size, shape = p.data.size, p.data.shape
            p.data = self.data[offset:offset + size].reshape(shape)
            p.grad = self.grad[offset:offset + size].reshape(shape)
            offset += size

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state; got {sorted(state)}")


class SGD(_Flat):
    """Plain SGD: p.data -= lr * p.grad for every parameter."""

    def __init__(self, params, lr):
        super().__init__(params)
        self._update = np.empty_like(self.data)
        self.lr = lr

    @property
    def lr(self):
        return float(self._lr)

    @lr.setter
    def lr(self, value):
        self._lr = np.asarray(value, self.data.dtype)  # a 0-d array: cheaper to apply than a float

    def step(self):
        np.multiply(self.grad, self._lr, out=self._update)
        self.data -= self._update


class AdamW(_Flat):
    """AdamW as torch.optim.AdamW computes it, defaults makemore.py's settings (weight decay on
    every parameter, embeddings, LayerNorm and biases included). One step, for each parameter p
    with gradient g, at step t = 1, 2, ...:

        p <- p (1 - lr weight_decay)                          decoupled weight decay
        m <- m + (1 - beta1) (g - m)                          first moment (torch's lerp)
        v <- beta2 v + ((1 - beta2) g) g                      second moment
        p <- p + (-lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    the bias corrections in Python floats and every array operation in the parameters' dtype in
    torch's order, so float64 parameters follow torch's to rounding."""

    def __init__(self, params, lr=MAKEMORE["lr"], betas=MAKEMORE["betas"], eps=MAKEMORE["eps"],
                 weight_decay=MAKEMORE["weight_decay"]):
        super().__init__(params)
        self.lr, (self.beta1, self.beta2), self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.step_count = 0
        self.exp_avg = np.zeros_like(self.data)
        self.exp_avg_sq = np.zeros_like(self.data)
        self._tmp = np.empty_like(self.data)
        self._update = np.empty_like(self.data)

    def step(self):
        """One AdamW step from the gradients in the parameters' .grad."""
        p, g, m, v, tmp = self.data, self.grad, self.exp_avg, self.exp_avg_sq, self._tmp
        self.step_count += 1
        t, lr, b1, b2 = self.step_count, self.lr, self.beta1, self.beta2
        p *= 1 - lr * self.weight_decay                   # decoupled weight decay
        np.subtract(g, m, out=tmp)
        tmp *= 1 - b1
        m += tmp                                          # m <- m + (1 - b1) (g - m)
        v *= b2
        np.multiply(g, 1 - b2, out=tmp)
        tmp *= g
        v += tmp                                          # v <- b2 v + ((1 - b2) g) g
        step_size = lr / (1 - b1 ** t)                    # bias corrections, in Python floats
        bias_correction2_sqrt = (1 - b2 ** t) ** 0.5
        np.sqrt(v, out=tmp)
        tmp /= bias_correction2_sqrt
        tmp += self.eps                                   # denom = sqrt(v) / sqrt(1 - b2^t) + eps
        np.multiply(m, -step_size, out=self._update)      # torch's addcdiv: value times m,
        self._update /= tmp                               # then divided by denom
        p += self._update

    def state_dict(self):
        """{"step": 0-d int64, "exp_avg", "exp_avg_sq": flat arrays in parameter order} (copies)."""
        return {"step": np.asarray(self.step_count, np.int64), "exp_avg": self.exp_avg.copy(),
                "exp_avg_sq": self.exp_avg_sq.copy()}

    def load_state_dict(self, state):
        """Restore a state_dict(): names, shapes and dtypes must match exactly (ValueError)."""
        if set(state) != {"step", "exp_avg", "exp_avg_sq"}:
            raise ValueError(f"AdamW's state is step, exp_avg and exp_avg_sq; got {sorted(state)}")
        step = np.asarray(state["step"])
        if step.shape != () or not np.issubdtype(step.dtype, np.integer) or step < 0:
            raise ValueError(f"AdamW's step must be an integer >= 0, got {state['step']!r}")
        for name in ("exp_avg", "exp_avg_sq"):
            src, dst = np.asarray(state[name]), getattr(self, name)
            if src.shape != dst.shape or src.dtype != dst.dtype:
                raise ValueError(f"AdamW's {name}: expected {dst.shape} {dst.dtype}, got {src.shape} {src.dtype}")
        self.step_count = int(step)
        self.exp_avg[...] = state["exp_avg"]
        self.exp_avg_sq[...] = state["exp_avg_sq"]


def optimizer_state_shapes(config, n_params):
    """{name: (shape, dtype)} of the state optimizer_for(config, ...) saves, from sizes alone."""
    if config.optimizer == "sgd":
        return {}
    dt = np.dtype(config.dtype)
    return {"step": ((), np.dtype(np.int64)), "exp_avg": ((n_params,), dt), "exp_avg_sq": ((n_params,), dt)}


def optimizer_for(config, params, step=0):
    """The optimizer a RunConfig trains with (SGD or AdamW), at the rate of step `step`."""
    if config.optimizer == "sgd":
        return SGD(params, config.learning_rate(step))
    return AdamW(params, lr=config.learning_rate(step), weight_decay=config.weight_decay)
