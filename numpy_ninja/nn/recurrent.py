"""Recurrent layers: makemore's RNN and GRU cells, and a layer that runs a cell over a sequence.

makemore's recurrences, with the weights in our layout (``xh_to_*.weight`` is ``(n_embd +
n_embd2, n_embd2)``: rows ``:n_embd`` act on the input, rows ``n_embd:`` on the hidden state):

- ``RNNCell``: ``h = tanh([x, hprev] @ W + b)`` (``xh_to_h``).
- ``GRUCell``, makemore's gate equations exactly::

      r    = sigmoid([x, hprev] @ Wr + br)              # xh_to_r: the reset gate
      hbar = tanh([x, r * hprev] @ Wn + bn)             # xh_to_hbar: the candidate state
      z    = sigmoid([x, hprev] @ Wz + bz)              # xh_to_z: the switch gate
      h    = (1 - z) * hprev + z * hbar

  This is not ``torch.nn.GRUCell``: torch resets after the matmul (``r * (hprev @ Whn + bhn)``,
  with a second bias) and blends the other way round (``h = (1 - z) * hbar + z * hprev``). The
  swapped ``z`` could be absorbed by negating its weights; the reset's placement cannot.
- ``Recurrent(cell)``: the cell over a whole sequence ``x (B, T, n_embd) -> (B, T, n_embd2)``,
  from a learned start state ``start (1, n_embd2)``, with backpropagation through time; its
  parameters are makemore's ``start`` and ``cell.*``.

A cell's ``forward(xt, hprev)`` / ``backward(dh) -> (dxt, dhprev)`` is one step; ``scan`` /
``scan_backward`` run T steps. The part of every gate that depends on the input alone is computed
for all T steps in one matrix product before the loop, and so are all the weight gradients after
it: the loop does only what must be sequential (two matrix products per GRU step each way).

Terms (``terms``, for the checks: docs/tolerances.md). A recurrence's results carry more than
their own rounding: h_t inherits h_{t-1}'s error through the recurrence, and the backward uses the
h_t, gates and candidates of the forward, errors included. ``scan_terms`` propagates, in float64,
for each forward value its own rounding plus its inputs' errors through the magnitudes of its
derivatives (``(1 - h^2) * (terms of a)`` for a tanh), and for each backward value a pair: a
bound on its magnitude (the backward on absolute values, as ``Linear.terms``) and its terms (the
magnitude times the error of each forward factor it is multiplied by, plus the error it
inherits through the magnitude of the factor). The inputs and ``start`` are exact.
"""
import numpy as np

from ._util import filled
from .linear import Linear
from .container import Container
from .module import Parameter


def _time_major(x):
    """(B, T, F) -> its rows in time order, (T*B, F): step t is rows t*B .. t*B+B-1 (a copy)."""
    B, T, F = x.shape
    return x.transpose(1, 0, 2).reshape(T * B, F)


def _batch_first(a):
    """(T, B, F) -> (B, T, F), contiguous."""
    return np.ascontiguousarray(a.transpose(1, 0, 2))


def _times(M, T, c, Ec):
    """Terms of q = a * c, for a backward value a (magnitude at most M, terms T) and a forward
    factor c (magnitude c, terms Ec: its own rounding and inherited error): q's magnitude and
    terms, q's own rounding included."""
    return M * c, T * c + M * (Ec + c)


def _through(M, T, W):
    """Terms of q = a @ W for exact weights (W given as |W|): the inherited error through |W|, and
    the rounding of the sum, of the size of its terms."""
    return M @ W, (T + M) @ W


class _Cell(Container):
    """What both cells share: the single-step API over ``scan``, parameter names, dtype."""

    gates = ()  # names of the Linear(n_embd + n_embd2, n_embd2) layers, in makemore's order

    def __init__(self, n_embd, n_embd2, *, rng=None, dtype=np.float32):
        rng = np.random.default_rng() if rng is None else rng
        self.n_embd, self.n_embd2 = n_embd, n_embd2
        for name in self.gates:
            setattr(self, name, Linear(n_embd + n_embd2, n_embd2, rng=rng, dtype=dtype))

    def children(self):
        return tuple((name, getattr(self, name)) for name in self.gates)

    def forward(self, xt, hprev):
        """One step: xt (B, n_embd), hprev (B, n_embd2) -> h (B, n_embd2)."""
        return self.scan(xt[:, None], hprev)[:, 0]

    def backward(self, dh):
        """dh (B, n_embd2) -> (dxt (B, n_embd), dhprev (B, n_embd2)); writes the weight gradients."""
        dx, dhprev = self.scan_backward(dh[:, None])
        return dx[:, 0], dhprev

    def _split(self, name):
        """A gate's weight as (its x rows, its h rows) and its bias: (E, H), (H, H), (H,) views."""
        layer, E = getattr(self, name), self.n_embd
        return layer.weight.data[:E], layer.weight.data[E:], layer.bias.data


class RNNCell(_Cell):
    """makemore's RNN cell: ``h = tanh(xh_to_h([x, hprev]))``.

    ``RNNCell(n_embd, n_embd2, rng=, dtype=)``; parameters ``xh_to_h.weight`` (n_embd + n_embd2,
    n_embd2) and ``xh_to_h.bias`` (n_embd2,); the models initialise them as makemore does.
    """

    gates = ("xh_to_h",)

    def scan(self, x, h0):
        """T steps: x (B, T, n_embd), h0 (B, n_embd2) -> hidden states (B, T, n_embd2)."""
        B, T, E = x.shape
        Wx, Wh, b = self._split("xh_to_h")
        xs = _time_major(x)                                       # (T*B, E)
        hs = np.empty((T + 1, B, self.n_embd2), x.dtype)          # hs[t] = h_{t-1}; hs[0] = h0
        hs[0] = h0
        a = np.dot(xs, Wx).reshape(T, B, -1)                      # (T, B, H): x_t Wx, every step
        a += b
        for t in range(T):
            h = np.dot(hs[t], Wh, out=hs[t + 1])                  # h_{t-1} Wh
            h += a[t]
            np.tanh(h, out=h)                                     # h_t = tanh(x_t Wx + h_{t-1} Wh + b)
        self.cache = (xs, hs)
        return _batch_first(hs[1:])

    def scan_backward(self, dhs):
        """dhs (B, T, n_embd2), dL/d(each hidden state) -> (dx (B, T, n_embd), dh0 (B, n_embd2))."""
        xs, hs = self.saved()
        T1, B, H = hs.shape
        T, E = T1 - 1, self.n_embd
        Wx, Wh, _ = self._split("xh_to_h")
        W = self.xh_to_h
        da = np.empty((T, B, H), dhs.dtype)                       # dL/d(pre-activation), every step
        dh = np.zeros((B, H), dhs.dtype)                          # what step t+1 sends back to h_t
        for t in reversed(range(T)):
            d = np.add(dhs[:, t], dh, out=da[t])                  # dh_t = dout_t + from step t+1
            h = hs[t + 1]
            d *= 1 - h * h                                        # da_t = dh_t * (1 - h_t^2)
            dh = np.dot(d, Wh.T)                                  # dh_{t-1} = da_t Wh^T
        da2 = da.reshape(T * B, H)
        # a_t = x_t Wx + h_{t-1} Wh + b: dWx = x^T da, dWh = h_prev^T da, db = sum of da, dx = da Wx^T
        np.dot(xs.T, da2, out=W.weight.grad[:E])
        np.dot(hs[:T].reshape(T * B, H).T, da2, out=W.weight.grad[E:])
        np.dot(filled(T * B, 1, da2.dtype), da2, out=W.bias.grad)
        dx = np.dot(da2, Wx.T).reshape(T, B, E)
        return _batch_first(dx), dh

    def scan_terms(self, dout_terms):
        """The terms of every result of the last scan and scan_backward (the layer protocol's
        ``terms``, docs/tolerances.md), float64: "out" (B, T, H), "dx", "h0" (dh0's) and each
        parameter's gradient, given dout_terms (B, T, H) >= 0. In a recurrence a result carries
        the rounding of what it is computed from: h_t inherits h_{t-1}'s error through Wh, and the
        backward the error of the h_t it uses. So each value's terms are its own rounding plus
        its inputs' errors through the derivatives' magnitudes (module docstring, "Terms")."""
        xs, hs = self.saved()
        T1, B, H = hs.shape
        T, E = T1 - 1, self.n_embd
        Wx, Wh, b = (np.abs(v.astype(np.float64)) for v in self._split("xh_to_h"))
        X = np.abs(xs.astype(np.float64)).reshape(T, B, E)
        h = hs.astype(np.float64)
        ha = np.abs(h)
        O = np.zeros((T + 1, B, H))                               # error terms of h_t (h0 exact)
        for t in range(T):
            Ea = X[t] @ Wx + b + (ha[t] + O[t]) @ Wh              # a_t: its sum, and h_{t-1}'s error
            O[t + 1] = (1 - h[t + 1] ** 2) * Ea + ha[t + 1]       # tanh' times that, and tanh's own
        D = dout_terms.transpose(1, 0, 2)
        MA, TA = np.empty((T, B, H)), np.empty((T, B, H))         # da_t: magnitude, terms
        MH = TH = np.zeros((B, H))                                # what step t+1 sends to h_t
        for t in reversed(range(T)):
            c = 1 - h[t + 1] ** 2                                 # computed from h_t, error 2|h| O
            MA[t], TA[t] = _times(D[t] + MH, D[t] + TH, c, 2 * ha[t + 1] * O[t + 1] + c)
            MH, TH = _through(MA[t], TA[t], Wh.T)
        MA, S = MA.reshape(T * B, H), (TA + MA).reshape(T * B, H)
        return {"out": _batch_first(O[1:]), "h0": TH,
                "dx": _batch_first((S @ Wx.T).reshape(T, B, E)),
                "xh_to_h.weight": np.concatenate([X.reshape(T * B, E).T @ S,
                                                  ha[:T].reshape(T * B, H).T @ S
                                                  + O[:T].reshape(T * B, H).T @ MA]),
                "xh_to_h.bias": S.sum(0)}


class GRUCell(_Cell):
    """makemore's GRU cell (module docstring for the equations; not torch.nn.GRUCell's).

    ``GRUCell(n_embd, n_embd2, rng=, dtype=)``; parameters ``xh_to_z``, ``xh_to_r``,
    ``xh_to_hbar`` (each ``.weight`` (n_embd + n_embd2, n_embd2) and ``.bias`` (n_embd2,)), in
    makemore's order; the models initialise them as makemore does.
    """

    gates = ("xh_to_z", "xh_to_r", "xh_to_hbar")

    def _fused(self):
        """The gates side by side in the loop's order [r | z | hbar]: x rows (E, 3H), the h rows
        of r and z (H, 2H), hbar's h rows (H, H) and the biases (3H,)."""
        (rx, rh, rb), (zx, zh, zb), (nx, nh, nb) = (self._split(g) for g in
                                                    ("xh_to_r", "xh_to_z", "xh_to_hbar"))
        return (np.concatenate([rx, zx, nx], 1), np.concatenate([rh, zh], 1), nh,
                np.concatenate([rb, zb, nb]))

    def scan(self, x, h0):
        """T steps: x (B, T, n_embd), h0 (B, n_embd2) -> hidden states (B, T, n_embd2)."""
        B, T, E = x.shape
        H = self.n_embd2
        Wx, Whrz, Whn, b = self._fused()
        xs = _time_major(x)                                       # (T*B, E)
        gx = np.dot(xs, Wx).reshape(T, B, 3 * H)                  # x's part of r, z, hbar, every step
        gx += b
        hs = np.empty((T + 1, B, H), x.dtype)                     # hs[t] = h_{t-1}; hs[0] = h0
        hs[0] = h0
        rz = np.empty((T, B, 2 * H), x.dtype)                     # the gates [r | z] of each step
        rhs = np.empty((T, B, H), x.dtype)                        # r * hprev
        hbars = np.empty((T, B, H), x.dtype)
        with np.errstate(over="ignore"):                          # exp(-a) = inf: sigmoid(a) = 0
            for t in range(T):
                h = hs[t]
                g = np.dot(h, Whrz, out=rz[t])                    # (B, 2H)
                g += gx[t, :, :2 * H]
                np.negative(g, out=g)
                np.exp(g, out=g)
                g += 1
                np.reciprocal(g, out=g)                           # [r | z] = sigmoid(x Wx + hprev Wh + b)
                r, z = g[:, :H], g[:, H:]
                rh = np.multiply(r, h, out=rhs[t])                # hprev_reset = r * hprev
                hbar = np.dot(rh, Whn, out=hbars[t])
                hbar += gx[t, :, 2 * H:]
                np.tanh(hbar, out=hbar)                           # hbar = tanh(x Wnx + hprev_reset Wnh + bn)
                hn = np.subtract(hbar, h, out=hs[t + 1])
                hn *= z
                hn += h                                           # h = hprev + z (hbar - hprev)
        self.cache = (xs, hs, rz, rhs, hbars)
        return _batch_first(hs[1:])

    def scan_backward(self, dhs):
        """dhs (B, T, n_embd2), dL/d(each hidden state) -> (dx (B, T, n_embd), dh0 (B, n_embd2))."""
        xs, hs, rz, rhs, hbars = self.saved()
        T1, B, H = hs.shape
        T, E = T1 - 1, self.n_embd
        Wx, Whrz, Whn, _ = self._fused()
        dpre = np.empty((T, B, 3 * H), dhs.dtype)                 # dL/d(pre-activation) [r | z | hbar]
        dh = np.zeros((B, H), dhs.dtype)                          # what step t+1 sends back to h_t
        for t in reversed(range(T)):
            h, g, hbar = hs[t], rz[t], hbars[t]
            r, z = g[:, :H], g[:, H:]
            dht = dhs[:, t] + dh                                  # dh_t = dout_t + from step t+1
            # h = hprev + z (hbar - hprev)
            daz = np.subtract(hbar, h, out=dpre[t, :, H:2 * H])
            daz *= dht                                            # dz = dh * (hbar - hprev)
            daz *= z * (1 - z)                                    # daz = dz * z (1 - z)
            dan = np.multiply(dht, z, out=dpre[t, :, 2 * H:])     # dhbar = dh * z
            dan *= 1 - hbar * hbar                                # dan = dhbar * (1 - hbar^2)
            # hbar's pre-activation = x Wnx + hprev_reset Wnh + bn
            drh = np.dot(dan, Whn.T)                              # dhprev_reset = dan Wnh^T
            # hprev_reset = r * hprev
            dar = np.multiply(drh, h, out=dpre[t, :, :H])         # dr = dhprev_reset * hprev
            dar *= r * (1 - r)                                    # dar = dr * r (1 - r)
            # hprev feeds the blend, the reset, and the r and z pre-activations
            dh = np.dot(dpre[t, :, :2 * H], Whrz.T)               # [dar | daz] [Wrh | Wzh]^T
            dh += drh * r                                         # + dhprev_reset * r
            dh += dht * (1 - z)                                   # + dh * (1 - z)
        D = dpre.reshape(T * B, 3 * H)
        # pre = x Wx + [hprev | hprev | hprev_reset] Wh + b, summed over every step
        dWx = np.dot(xs.T, D)                                     # (E, 3H)
        dWhrz = np.dot(hs[:T].reshape(T * B, H).T, D[:, :2 * H])  # (H, 2H)
        db = np.dot(filled(T * B, 1, D.dtype), D)                   # (3H,)
        for k, name in enumerate(("xh_to_r", "xh_to_z")):
            layer, cols = getattr(self, name), slice(k * H, (k + 1) * H)
            layer.weight.grad[:E] = dWx[:, cols]
            layer.weight.grad[E:] = dWhrz[:, cols]
            layer.bias.grad[...] = db[cols]
        n = self.xh_to_hbar
        n.weight.grad[:E] = dWx[:, 2 * H:]
        np.dot(rhs.reshape(T * B, H).T, D[:, 2 * H:], out=n.weight.grad[E:])
        n.bias.grad[...] = db[2 * H:]
        dx = np.dot(D, Wx.T).reshape(T, B, E)
        return _batch_first(dx), dh

    def scan_terms(self, dout_terms):
        """The terms of every result of the last scan and scan_backward, float64, as
        RNNCell.scan_terms: each value's own rounding plus the errors it inherits."""
        xs, hs, rz, rhs, hbars = self.saved()
        T1, B, H = hs.shape
        T, E = T1 - 1, self.n_embd
        Wx, Whrz, Whn, b = (np.abs(v.astype(np.float64)) for v in self._fused())
        X = np.abs(xs.astype(np.float64)).reshape(T, B, E)
        h, g = hs.astype(np.float64), rz.astype(np.float64)
        ha, r, z = np.abs(h), g[..., :H], g[..., H:]
        hbar, rh = hbars.astype(np.float64), np.abs(rhs.astype(np.float64))
        dif = np.abs(hbar - h[:T])                                # |hbar - hprev|
        O = np.zeros((T + 1, B, H))                               # error terms of h_t (h0 exact)
        R, Z, RH, N = (np.empty((T, B, H)) for _ in range(4))     # ... of r, z, r * hprev, hbar
        for t in range(T):
            Erz = X[t] @ Wx[:, :2 * H] + b[:2 * H] + (ha[t] + O[t]) @ Whrz
            R[t] = r[t] * (1 - r[t]) * Erz[:, :H] + r[t]          # sigmoid' = s (1 - s), and its own
            Z[t] = z[t] * (1 - z[t]) * Erz[:, H:] + z[t]
            RH[t] = r[t] * O[t] + ha[t] * R[t] + rh[t]
            En = X[t] @ Wx[:, 2 * H:] + b[2 * H:] + (rh[t] + RH[t]) @ Whn
            N[t] = (1 - hbar[t] ** 2) * En + np.abs(hbar[t])
            # h = hprev + z (hbar - hprev): d/dhprev = 1 - z, d/dhbar = z, d/dz = hbar - hprev
            O[t + 1] = ((1 - z[t]) * O[t] + z[t] * N[t] + dif[t] * Z[t]
                        + ha[t] + z[t] * (np.abs(hbar[t]) + ha[t]))
        D = dout_terms.transpose(1, 0, 2)
        MP, TP = np.empty((T, B, 3 * H)), np.empty((T, B, 3 * H))  # d pre-activations [r | z | hbar]
        MH = TH = np.zeros((B, H))
        for t in reversed(range(T)):
            M, Tt = D[t] + MH, D[t] + TH                          # dh
            zt, rt = z[t], r[t]
            Mz, Tz = _times(M, Tt, dif[t], N[t] + O[t] + dif[t])  # dz = dh (hbar - hprev)
            sz = zt * (1 - zt)
            MP[t, :, H:2 * H], TP[t, :, H:2 * H] = _times(Mz, Tz, sz, np.abs(1 - 2 * zt) * Z[t] + sz)
            Mn, Tn = _times(M, Tt, zt, Z[t])                      # dhbar = dh z
            c = 1 - hbar[t] ** 2
            MP[t, :, 2 * H:], TP[t, :, 2 * H:] = _times(Mn, Tn, c, 2 * np.abs(hbar[t]) * N[t] + c)
            Mrh, Trh = _through(MP[t, :, 2 * H:], TP[t, :, 2 * H:], Whn.T)  # d(r hprev)
            Mr, Tr = _times(Mrh, Trh, ha[t], O[t])                # dr = d(r hprev) hprev
            sr = rt * (1 - rt)
            MP[t, :, :H], TP[t, :, :H] = _times(Mr, Tr, sr, np.abs(1 - 2 * rt) * R[t] + sr)
            # dhprev = dh (1 - z) + d(r hprev) r + [dar | daz] [Wrh | Wzh]^T
            M1, T1 = _times(M, Tt, 1 - zt, Z[t] + 1 - zt)
            M2, T2 = _times(Mrh, Trh, rt, R[t])
            M3, T3 = _through(MP[t, :, :2 * H], TP[t, :, :2 * H], Whrz.T)
            MH = M1 + M2 + M3
            TH = T1 + T2 + T3 + MH                                # the two additions round too
        MP, S = MP.reshape(T * B, 3 * H), (TP + MP).reshape(T * B, 3 * H)
        dWx = X.reshape(T * B, E).T @ S
        dWh = np.concatenate([
            ha[:T].reshape(T * B, H).T @ S[:, :2 * H] + O[:T].reshape(T * B, H).T @ MP[:, :2 * H],
            rh.reshape(T * B, H).T @ S[:, 2 * H:] + RH.reshape(T * B, H).T @ MP[:, 2 * H:]], 1)
        db = S.sum(0)
        t = {"out": _batch_first(O[1:]), "h0": TH, "dx": _batch_first((S @ Wx.T).reshape(T, B, E))}
        for k, name in enumerate(("xh_to_r", "xh_to_z", "xh_to_hbar")):
            cols = slice(k * H, (k + 1) * H)
            t[f"{name}.weight"] = np.concatenate([dWx[:, cols], dWh[:, cols]])
            t[f"{name}.bias"] = db[cols]
        return t


CELLS = {"rnn": RNNCell, "gru": GRUCell}


class Recurrent(Container):
    """A cell run over a whole sequence from a learned start state (makemore's RNN loop).

    ``Recurrent(cell)``: x (B, T, n_embd) -> the hidden state after each step (B, T, n_embd2).
    Every row starts from ``start`` (1, n_embd2), zeros as made. Parameters: ``start`` and the
    cell's as ``cell.<name>`` (makemore's RNN names, without its embedding and head).
    ``backward(dout)`` backpropagates through time: it returns dx (B, T, n_embd) and writes the
    cell's gradients and ``start``'s (the sum over rows of the gradient at the first state).
    """

    param_names = ("start",)

    def __init__(self, cell):
        self.cell = cell
        dtype = cell.parameters()[0].data.dtype
        self.start = Parameter(np.zeros((1, cell.n_embd2), dtype))

    def children(self):
        return (("cell", self.cell),)

    def forward(self, x):
        h0 = np.broadcast_to(self.start.data, (x.shape[0], self.cell.n_embd2))  # (B, H)
        self.cache = x.shape
        return self.cell.scan(x, h0)

    def backward(self, dout):
        self.saved()
        dx, dh0 = self.cell.scan_backward(dout)
        # h0 = start expanded over the batch: dstart = sum of dh0 over the rows
        np.dot(filled(len(dh0), 1, dh0.dtype), dh0, out=self.start.grad[0])
        return dx

    def terms(self, dout_terms):
        self.saved()
        t = self.cell.scan_terms(dout_terms)
        out = {"out": t.pop("out"), "dx": t.pop("dx"), "start": t.pop("h0").sum(0, keepdims=True)}
        out.update((f"cell.{k}", v) for k, v in t.items())
        return out

    def check_domain(self, x, rtol):
        return None if x.ndim == 3 else f"Recurrent needs (B, T, n_embd) input, got shape {x.shape}"
