"""Property tests: every output, gradient and running statistic of numpy_ninja against PyTorch
autograd (the oracle) over generated shapes, batch sizes, initialisations and dtypes; the same
against central finite differences, independent of torch; and invariants that hold for any input.
Tolerances are DESIGN.md's (oracle/compare.py)."""
import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numpy_ninja as nn
from numpy_ninja import atomic, models
from numpy_ninja.config import RunConfig
from numpy_ninja.gradcheck import numerical_grad
from oracle.compare import agreement
from oracle.twin import run_twin
from oracle.scales import atomic_term_scales, term_scales
from props import (DTYPES, SCALES, atomic_disagreements, floats, lecture_params, one_step_disagreements,
                   our_pass, resolvable, set_params, twin_disagreements)


def batch_shape(data, min_rows=1):
    """(N, C) or (N, L, C) leading axes: N from 1 (2 rows at least when min_rows == 2)."""
    three_d = data.draw(st.booleans(), label="3-D")
    if three_d:
        N, L = data.draw(st.integers(1, 6), label="N"), data.draw(st.integers(1, 4), label="L")
        if N * L < min_rows:
            N = min_rows
        return (N, L)
    return (data.draw(st.integers(min_rows, 12), label="N"),)


# ---------------------------------------------------------------- each layer against torch

@given(st.data(), DTYPES, SCALES)
def test_linear(data, dtype, scale):
    lead = batch_shape(data)
    fan_in, fan_out = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
    model = nn.Sequential([nn.Linear(fan_in, fan_out, bias=data.draw(st.booleans(), label="bias"))])
    set_params(data, model, dtype, scale)
    x, dout = data.draw(floats(dtype, lead + (fan_in,))), data.draw(floats(dtype, lead + (fan_out,)))
    assert twin_disagreements(model, x, dout=dout) == []


@given(st.data(), DTYPES, SCALES, st.booleans(), st.booleans())
def test_batchnorm(data, dtype, scale, unbiased, training):
    lead = batch_shape(data, min_rows=2 if training else 1)
    C = data.draw(st.integers(1, 8), label="C")
    model = nn.Sequential([nn.BatchNorm1d(C, unbiased=unbiased, momentum=data.draw(
        st.sampled_from([0.1, 0.5, 1.0]), label="momentum"))]).train(training)
    set_params(data, model, dtype, scale)
    x, dout = data.draw(floats(dtype, lead + (C,))), data.draw(floats(dtype, lead + (C,)))
    assert twin_disagreements(model, x, dout=dout) == []


@given(st.data(), DTYPES, SCALES)
def test_embedding(data, dtype, scale):
    V, E = data.draw(st.integers(1, 8), label="V"), data.draw(st.integers(1, 5), label="E")
    lead = batch_shape(data)
    model = nn.Sequential([nn.Embedding(V, E)])
    set_params(data, model, dtype, scale)
    x = data.draw(hnp.arrays(np.int64, lead, elements=st.integers(0, V - 1)), label="x")  # repeats
    dout = data.draw(floats(dtype, lead + (E,)))
    assert twin_disagreements(model, x, dout=dout) == []


@given(st.data(), DTYPES)
def test_reshapes_and_tanh(data, dtype):
    B, C = data.draw(st.integers(1, 5), label="B"), data.draw(st.integers(1, 4), label="C")
    T = data.draw(st.sampled_from([1, 2, 3, 4, 6, 8]), label="T")
    n = data.draw(st.sampled_from([d for d in range(1, T + 1) if T % d == 0]), label="n")  # any legal group
    layer = data.draw(st.sampled_from([nn.Flatten(), nn.FlattenConsecutive(n), nn.Tanh()]))
    x = data.draw(floats(dtype, (B, T, C), -4, 4))
    out_shape = layer(x).shape
    model = nn.Sequential([layer, nn.Tanh()])
    assert twin_disagreements(model, x, dout=data.draw(floats(dtype, out_shape))) == []


# ---------------------------------------------------------------- whole networks against torch

@given(st.data(), DTYPES, SCALES, st.booleans())
def test_random_flat_mlp(data, dtype, scale, unbiased):
    V = data.draw(st.integers(2, 10), label="V")
    block, E = data.draw(st.integers(1, 4), label="block"), data.draw(st.integers(1, 5), label="E")
    widths = data.draw(st.lists(st.integers(1, 12), min_size=1, max_size=3), label="widths")
    N = data.draw(st.integers(2, 16), label="N")
    layers, fan_in = [nn.Embedding(V, E), nn.Flatten()], block * E
    for w in widths:
        layers += [nn.Linear(fan_in, w, bias=data.draw(st.booleans())), nn.BatchNorm1d(w, unbiased=unbiased), nn.Tanh()]
        fan_in = w
    model = nn.Sequential(layers + [nn.Linear(fan_in, V)])
    set_params(data, model, dtype, scale)
    X = data.draw(hnp.arrays(np.int64, (N, block), elements=st.integers(0, V - 1)), label="X")
    Y = data.draw(hnp.arrays(np.int64, N, elements=st.integers(0, V - 1)), label="Y")
    assert twin_disagreements(model, X, targets=Y) == []


@given(st.data(), DTYPES, SCALES, st.booleans(), st.booleans())
def test_random_hierarchical_stack(data, dtype, scale, unbiased, training):
    V, E = data.draw(st.integers(2, 10), label="V"), data.draw(st.integers(1, 4), label="E")
    groups = data.draw(st.lists(st.sampled_from([2, 3]), min_size=1, max_size=3), label="groups")
    block = int(np.prod(groups))
    N = data.draw(st.integers(2, 8), label="N")
    layers, width = [nn.Embedding(V, E)], E
    for g in groups:
        h = data.draw(st.integers(1, 8), label="hidden")
        layers += [nn.FlattenConsecutive(g), nn.Linear(width * g, h, bias=False),
                   nn.BatchNorm1d(h, unbiased=unbiased), nn.Tanh()]
        width = h
    model = nn.Sequential(layers + [nn.Linear(width, V)]).train(training)
    set_params(data, model, dtype, scale)
    X = data.draw(hnp.arrays(np.int64, (N, block), elements=st.integers(0, V - 1)), label="X")
    Y = data.draw(hnp.arrays(np.int64, N, elements=st.integers(0, V - 1)), label="Y")
    assert twin_disagreements(model, X, targets=Y) == []


# ---------------------------------------------------------------- the broken-up graph against autograd

@given(lecture_params())
def test_manual_backprop_all_26_gradients(case):
    assert atomic_disagreements(*case) == []


@given(lecture_params())
def test_one_step_backward(case):
    assert one_step_disagreements(*case) == []


# ---------------------------------------------------------------- finite differences, no torch

def fd_check(model, x, dout, tol=1e-7):
    """Every parameter gradient and the input gradient (if float) of f = sum(model(x) * dout) against
    central differences, float64. The error is measured against the larger of the gradients and
    the terms they are summed from (oracle.scales.term_scales), so that a gradient that is zero by
    cancellation is compared with the rounding its terms carry; central differences themselves
    carry rounding of about eps * F / h, F = sum |model(x) * dout| (the terms of f)."""
    def f():
        return float(np.sum(model(x) * dout))
    out, _, dx, _, douts = our_pass(model, x, dout=dout)
    fd_noise = 10 * np.finfo(np.float64).eps * float(np.abs(out * dout).sum()) / 1e-6
    scales = term_scales(model, douts)
    grads = {name: p.grad.copy() for name, p in model.named_parameters()}
    if dx is not None:
        grads["dx"] = dx
    for name, ours in grads.items():
        num = numerical_grad(f, x if name == "dx" else dict(model.named_parameters())[name].data)
        scale = max(scales[name], np.abs(ours).max(initial=0), np.abs(num).max(initial=0))
        assert np.abs(ours - num).max(initial=0) <= tol * scale + fd_noise, name


@given(st.data(), st.sampled_from(["linear", "batchnorm", "embedding", "tanh", "flatten", "consecutive"]),
       st.booleans())
def test_every_layer_against_finite_differences(data, kind, training):
    f64 = np.float64
    lead = batch_shape(data, min_rows=3)  # n >= 3: at n = 2 BatchNorm is flat up to eps
    C = data.draw(st.integers(1, 5), label="C")
    if kind == "embedding":
        V = data.draw(st.integers(1, 6), label="V")
        layer = nn.Embedding(V, C)
        x = data.draw(hnp.arrays(np.int64, lead, elements=st.integers(0, V - 1)))
    else:
        x = data.draw(hnp.arrays(f64, lead + (C,), elements=st.integers(-200, 200).map(lambda i: i / 100)))
        if kind == "linear":
            layer = nn.Linear(C, data.draw(st.integers(1, 5)), bias=data.draw(st.booleans()))
        elif kind == "batchnorm":
            layer = nn.BatchNorm1d(C, unbiased=data.draw(st.booleans()))
        elif kind == "tanh":
            layer = nn.Tanh()
        else:  # the reshaping layers take (N, T, C)
            x = x.reshape(lead[0], -1, C)
            T = x.shape[1]
            layer = nn.Flatten() if kind == "flatten" else nn.FlattenConsecutive(
                data.draw(st.sampled_from([d for d in range(1, T + 1) if T % d == 0])))
    model = nn.Sequential([layer]).train(training)
    set_params(data, model, f64, 1.0)
    out_shape = model(x).shape
    fd_check(model, x, data.draw(floats(f64, out_shape)))


@given(st.data())
def test_cross_entropy_against_finite_differences(data):
    N, V = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
    logits = data.draw(floats(np.float64, (N, V), -5, 5))
    Y = data.draw(hnp.arrays(np.int64, N, elements=st.integers(0, V - 1)))
    criterion = nn.CrossEntropyLoss()
    criterion(logits, Y)
    num = numerical_grad(lambda: nn.CrossEntropyLoss()(logits, Y), logits)
    # central differences carry rounding of about eps * |loss terms| / h (see fd_check)
    z = logits - logits.max(1, keepdims=True)
    fd_noise = 10 * np.finfo(np.float64).eps * float(np.mean(np.abs(np.log(np.exp(z).sum(1))) + np.abs(z).max(1))) / 1e-6
    dlogits = criterion.backward()
    assert np.abs(dlogits - num).max() <= 1e-7 * max(np.abs(dlogits).max(), np.abs(num).max()) + fd_noise


# ---------------------------------------------------------------- invariants

@given(st.data(), DTYPES)
def test_dlogits_rows_sum_to_zero(data, dtype):
    N, V = data.draw(st.integers(1, 16)), data.draw(st.integers(1, 30))
    logits = data.draw(floats(dtype, (N, V), -1000, 1000))
    Y = data.draw(hnp.arrays(np.int64, N, elements=st.integers(0, V - 1)))
    criterion = nn.CrossEntropyLoss()
    assert np.isfinite(criterion(logits, Y))
    dlogits = criterion.backward()
    assert dlogits.shape == logits.shape and dlogits.dtype == dtype
    eps = np.finfo(dtype).eps
    assert np.abs(dlogits.sum(1)).max() <= 4 * V * eps / N  # each row: softmax (sums to 1) minus 1, over N


@given(st.data(), DTYPES, st.booleans())
def test_batchnorm_input_gradient_sums_to_zero(data, dtype, unbiased):
    lead, C = batch_shape(data, min_rows=2), data.draw(st.integers(1, 6))
    bn = nn.BatchNorm1d(C, unbiased=unbiased, dtype=dtype)
    bn.weight.data = data.draw(floats(dtype, C))
    x, dout = data.draw(floats(dtype, lead + (C,))), data.draw(floats(dtype, lead + (C,)))
    assume(resolvable(x, dtype))
    bn(x)
    dx = bn.backward(dout)
    assert dx.shape == x.shape and dx.dtype == dtype
    # each row of dx is a difference of terms; their sum over the rows cancels to rounding of the
    # size of those terms: eps * (sum over rows of the terms), per channel
    xc, istd, n = bn.cache
    k, d2, xhat = np.abs(bn.weight.data * istd), np.abs(dout.reshape(-1, C)), np.abs(xc * istd)
    terms = k * (d2 + d2.sum(0) / n + xhat * (d2 * xhat).sum(0) / (n - (1 if unbiased else 0)))
    assert np.all(np.abs(dx.reshape(-1, C).sum(0)) <= 8 * np.finfo(dtype).eps * terms.sum(0))


@given(lecture_params(dtype=np.float64))
def test_logit_maxes_and_bias_before_batchnorm_have_zero_gradient(case):
    _, g = atomic.manual_backprop(*case)
    _, t = atomic.forward(*case)
    scales = atomic_term_scales(t, case[1])
    assert np.abs(g["logit_maxes"]).max() <= 1e-14 * scales["logit_maxes"]
    assert np.abs(g["b1"]).max() <= 1e-14 * scales["b1"]


# ---------------------------------------------------------------- the lecture's networks, exactly

@given(st.data(), DTYPES, st.sampled_from(["mlp", "wavenet"]), st.booleans())
def test_lecture_networks_against_twin(data, dtype, name, training):
    """The exercise-4 MLP (12,297 parameters) and the part-5 WaveNet (76,579), as built for
    training, every gradient against the twin, in training and eval mode."""
    config = RunConfig(model=name, seed=data.draw(st.integers(0, 2**16)), dtype=dtype.name)
    model = models.build_model(config, 27)
    model.train(training)
    N = data.draw(st.sampled_from([2, 3, 32]), label="N")
    X = data.draw(hnp.arrays(np.int64, (N, config.block_size), elements=st.integers(0, 26)))
    Y = data.draw(hnp.arrays(np.int64, N, elements=st.integers(0, 26)))
    assert twin_disagreements(model, X, targets=Y) == []


def test_batchnorm_channel_without_spread():
    """A channel whose batch values are all equal: the output is the bias, and every gradient
    agrees with the twin (float64; n = 4, so the mean is exact in both)."""
    x = np.random.default_rng(0).standard_normal((4, 3))
    x[:, 1] = 0.75
    dout = np.random.default_rng(1).standard_normal((4, 3))
    for unbiased in (True, False):
        bn = nn.BatchNorm1d(3, unbiased=unbiased, dtype=np.float64)
        bn.weight.data[:] = [0.5, 2.0, -1.5]
        bn.bias.data[:] = [0.1, -0.2, 0.3]
        model = nn.Sequential([bn])
        ref = run_twin(model, x, dout=dout)
        out, _, dx, _, douts = our_pass(model, x, dout=dout)
        assert np.all(out[:, 1] == -0.2)
        scales = term_scales(model, douts)
        assert agreement(out, ref["out"]).passes(np.float64)
        assert agreement(dx, ref["dx"], scales["dx"]).passes(np.float64)
        for k, p in model.named_parameters():
            assert agreement(p.grad, ref["grads"][k], scales[k]).passes(np.float64), k
