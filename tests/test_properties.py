"""Property tests: every output, gradient and running statistic of numpy_ninja against PyTorch
autograd (the oracle) over generated shapes, batch sizes, initialisations and dtypes; the same
against central finite differences, independent of torch; and invariants that hold for any input.
Single layers go through the public harness, oracle.check_layer. Tolerances:
docs/tolerances.md."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numpy_ninja as nn
from numpy_ninja import atomic, models
from numpy_ninja.config import RunConfig
from numpy_ninja.gradcheck import numerical_grad
from numpy_ninja.tolerance import disagreements
from oracle import check_layer
from oracle.reference.scales import atomic_term_scales, term_scales
from oracle.reference.twin import build_twin, run_twin
from props import (DTYPES, LAYERS, MAKEMORE_LAYERS, SCALES, atomic_disagreements, contexts, floats, lecture_params,
                   one_step_disagreements, our_pass, set_params, twin_disagreements)


# ---------------------------------------------------------------- each layer, through the public harness

@pytest.mark.parametrize("reference", ["twin", "finite differences"])
@pytest.mark.parametrize("name", LAYERS)
def test_layer(name, reference):
    """Output, input gradient, every parameter gradient and buffer: against the torch twin at the
    tolerance policy, or torch-free against float64 and central differences."""
    make_layer, features, ndim, kind = LAYERS[name]
    check_layer(make_layer, features, twin=build_twin if reference == "twin" else None,
                ndim=ndim, input=kind, max_examples=settings().max_examples, raise_on_failure=True)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reference", ["twin", "finite differences"])
@pytest.mark.parametrize("name", MAKEMORE_LAYERS)
def test_makemore_layer(name, reference, dtype):
    """makemore's layers and models as test_layer checks the lecture's, against makemore's own
    torch modules or torch-free, each dtype on its own: 2 examples each in the ci profile, 40 in
    the thorough one (the mutation tests show what so few catch; a block or a model is slower per
    example than a lecture layer). Train mode: none has buffers, eval is the same computation."""
    make_layer, features, ndim, kind, twin = MAKEMORE_LAYERS[name]
    check_layer(make_layer, features, twin=twin if reference == "twin" else None, ndim=ndim,
                input=kind, dtypes=(dtype,), modes=("train",),
                max_examples=settings().max_examples // 50, raise_on_failure=True)


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
    X = contexts(data.draw, V, N, block)
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
    X = contexts(data.draw, V, N, block)
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

@given(st.data())
def test_cross_entropy_against_finite_differences(data):
    N, V = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
    logits = data.draw(floats(np.float64, (N, V), -5, 5))
    Y = data.draw(hnp.arrays(np.int64, N, elements=st.integers(0, V - 1)))
    criterion = nn.CrossEntropyLoss()
    criterion(logits, Y)
    num = numerical_grad(lambda: nn.CrossEntropyLoss()(logits, Y), logits)
    # central differences carry rounding of about eps * |loss terms| / h
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
    """In training dx = k (dout - sum(dout)/n - xc a), k = g istd, a = istd dg/(n-d), sums to zero
    over the n rows of a channel, to rounding. Computed: the sum of dout and the row sum of dx each
    round (n-1) times, xc sums to a residue of (n+2) eps sum(|xc| + |mean|) (the mean is itself a
    sum of n rounded terms), and each element rounds about 5 times; with the terms of dx
    (BatchNorm1d.terms) bounding k |dout|, k |a| |xc| and their sums:
    |sum dx| <= eps ((3n + 5) sum(terms) + k |a| (n + 2) n |mean|)."""
    lead = (data.draw(st.integers(2, 12), label="N"),) + data.draw(st.sampled_from([(), (2,), (3,)]), label="L")
    C = data.draw(st.integers(1, 6), label="C")
    bn = nn.BatchNorm1d(C, unbiased=unbiased, dtype=dtype)
    bn.weight.data = data.draw(floats(dtype, C))
    x, dout = data.draw(floats(dtype, lead + (C,))), data.draw(floats(dtype, lead + (C,)))
    bn(x)
    dx = bn.backward(dout)
    assert dx.shape == x.shape and dx.dtype == dtype
    x2, n, d = x.reshape(-1, C).astype(np.float64), int(np.prod(lead)), 1 if unbiased else 0
    mean = x2.mean(0)
    istd = 1 / np.sqrt(((x2 - mean) ** 2).sum(0) / (n - d) + bn.eps)
    k, a = np.abs(bn.weight.data) * istd, istd * np.abs(bn.weight.grad) / (n - d)
    terms = bn.terms(np.abs(dout).astype(np.float64))["dx"].reshape(-1, C).sum(0)
    bound = np.finfo(dtype).eps * ((3 * n + 5) * terms + k * a * (n + 2) * n * np.abs(mean))
    assert np.all(np.abs(dx.reshape(-1, C).sum(0)) <= bound)


@given(lecture_params(dtype=np.float64))
def test_logit_maxes_and_bias_before_batchnorm_have_zero_gradient(case):
    _, g = atomic.manual_backprop(*case)
    _, t = atomic.forward(*case)
    scales = atomic_term_scales(t, case[1], case[2])
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
    X = contexts(data.draw, 27, N, config.block_size)
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
        out, _, dx, _, _, _ = our_pass(model, x, dout=dout)
        assert np.all(out[:, 1] == -0.2)
        scales = term_scales(model, np.abs(dout))
        assert disagreements([("out", out, ref["out"], None), ("dx", dx, ref["dx"], scales["dx"])]
                             + [(k, p.grad, ref["grads"][k], scales[k])
                                for k, p in model.named_parameters()]) == []
