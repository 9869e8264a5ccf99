"""Shared pieces of the property suite: strategies, and the checks that compare numpy_ninja with
the torch oracle. A check returns the list of disagreements, so the mutation tests can show that
the very check the suite uses reports a planted bug."""
import numpy as np
from hypothesis import assume, currently_in_test_context
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numpy_ninja as nn
from numpy_ninja import atomic
from oracle.atomic import autograd_backprop
from oracle.compare import agreement, resolvable
from oracle.scales import atomic_term_scales, backward_by_layer, term_scales
from oracle.twin import run_twin

DTYPES = hnp.floating_dtypes(sizes=(32, 64), endianness="=")
SCALES = st.sampled_from([1e-3, 1e-2, 0.1, 1.0, 10.0])  # init scales over four orders of magnitude


def floats(dtype, shape, lo=-2.0, hi=2.0):
    """A float array of the given dtype and shape (hypothesis elements, no subnormals)."""
    return hnp.arrays(dtype, shape, elements=st.floats(lo, hi, width=32, allow_subnormal=False))


def set_params(data, model, dtype, scale):
    """Draw every parameter (and positive running variances) with hypothesis, times scale."""
    for name, p in model.named_parameters():
        p.data = data.draw(floats(dtype, p.shape), label=name) * np.asarray(scale, dtype)
        p.grad = np.zeros_like(p.data)
    for layer in model.layers:
        if isinstance(layer, nn.BatchNorm1d):
            C = layer.weight.shape[0]
            layer.running_mean = data.draw(floats(dtype, C), label="running_mean")
            layer.running_var = data.draw(floats(dtype, C, 0.0625, 4.0), label="running_var")


def our_pass(model, x, targets=None, dout=None):
    """Forward and backward layer by layer; returns out, loss, dx, the input of each layer and the
    gradient reaching each layer."""
    inputs = []
    out = x
    for layer in model.layers:
        inputs.append(out)
        out = layer(out)
    loss = None
    if targets is not None:
        criterion = nn.CrossEntropyLoss()
        loss = criterion(out, targets)
        dout = criterion.backward()
    dx, douts = backward_by_layer(model, dout)
    return out, loss, dx, inputs, douts


def require(condition):
    """Inside a hypothesis test, skip the example; elsewhere (fixed cases) it must hold."""
    if currently_in_test_context():
        assume(condition)
    else:
        assert condition, "the batch cannot be resolved in this dtype (see resolvable)"


def output_scale(layer, x):
    """The magnitude of the terms the last layer's output is summed from (Linear: |x| |W| + |b|;
    BatchNorm: |g xhat| + |b|); None where the output is not a sum."""
    if isinstance(layer, nn.Linear):
        terms = np.abs(np.asarray(x, np.float64)) @ np.abs(layer.weight.data.astype(np.float64))
        return float((terms + (np.abs(layer.bias.data) if layer.bias is not None else 0)).max())
    if isinstance(layer, nn.BatchNorm1d):  # g * (x - mean) * istd + b, in whatever association
        xc, istd, _ = layer.cache
        x2 = np.abs(np.asarray(x, np.float64)).reshape(xc.shape)
        mean = np.abs(x2 - xc)  # the batch mean in training, the running mean in eval
        return float((np.abs(layer.weight.data * istd) * (x2 + mean) + np.abs(layer.bias.data)).max())
    return None


def twin_disagreements(model, x, targets=None, dout=None):
    """Everything numpy_ninja computes for one pass of `model`, against its torch twin.

    Returns [(what, Agreement)] for every output, loss, input gradient, parameter gradient and
    running statistic that breaks the DESIGN.md tolerance for the model's dtype.
    """
    dtype = model.parameters()[0].data.dtype if model.parameters() else x.dtype
    ref = run_twin(model, x, targets=targets, dout=dout)  # before ours: ours updates buffers
    before = {k: np.abs(np.asarray(v, np.float64)) for k, v in model.named_buffers()}
    out, loss, dx, inputs, douts = our_pass(model, x, targets=targets, dout=dout)
    bn_inputs = [x for layer, x in zip(model.layers, inputs) if isinstance(layer, nn.BatchNorm1d) and layer.training]
    require(all(resolvable(x, dtype, len(bn_inputs)) for x in bn_inputs))
    top = None
    if targets is not None:  # dlogits = (softmax - onehot) / N cancels where the softmax is sure
        z = np.asarray(out, np.float64)
        top = np.exp(z - z.max(1, keepdims=True))
        top /= top.sum(1, keepdims=True)
        top[np.arange(len(z)), targets] += 1
        top /= len(z)
    scales = term_scales(model, douts, top)
    pairs = [("out", out, ref["out"], output_scale(model.layers[-1], inputs[-1]))]
    if loss is not None:  # mean(logsumexp - logit of the target): measured against those terms
        z = np.asarray(out, np.float64)
        lse = z.max(1) + np.log(np.exp(z - z.max(1, keepdims=True)).sum(1))
        loss_terms = float(np.mean(np.abs(lse) + np.abs(z[np.arange(len(z)), targets])))
        pairs.append(("loss", np.array(loss, dtype), np.array(ref["loss"], dtype), loss_terms))
    if ref["dx"] is not None:
        pairs.append(("dx", dx, ref["dx"], scales["dx"]))
    for name, p in model.named_parameters():
        pairs.append((f"grad {name}", p.grad, ref["grads"][name], scales[name]))
    for i, layer in enumerate(model.layers):
        if isinstance(layer, nn.BatchNorm1d):
            # running = (1-m) running + m stat: measured against those terms (the mean can cancel)
            x2 = np.asarray(inputs[i], np.float64).reshape(-1, layer.weight.shape[0])
            m, n = (layer.momentum, len(x2)) if layer.training else (0.0, 2)
            stats = {"running_mean": np.abs(x2).mean(0), "running_var": (x2**2).sum(0) / (n - 1)}
            for k, stat in stats.items():
                name = f"{i}.{k}"
                scale = float(((1 - m) * before[name] + m * stat).max())
                pairs.append((name, getattr(layer, k), ref["buffers"][name], scale))
    bad = []
    for what, ours, theirs, scale in pairs:
        assert ours.shape == theirs.shape and ours.dtype == dtype, what
        a = agreement(ours, theirs, scale)
        if not a.passes(dtype):
            bad.append((what, a))
    return bad


def atomic_disagreements(params, Xb, Yb):
    """All 26 gradients of the broken-up graph (and the loss) against autograd."""
    dtype = params["C"].dtype
    _, t = atomic.forward(params, Xb, Yb)
    require(resolvable(t["hprebn"], dtype))
    loss, grads = atomic.manual_backprop(params, Xb, Yb)
    ref_loss, ref = autograd_backprop(params, Xb, Yb)
    scales = atomic_term_scales(t, Xb)
    bad = []
    a = agreement(np.array(loss, dtype), np.array(ref_loss, dtype))
    if not a.passes(dtype):
        bad.append(("loss", a))
    for name in atomic.GRAD_NAMES:
        assert grads[name].shape == ref[name].shape and grads[name].dtype == dtype, name
        a = agreement(grads[name], ref[name], scales.get(name))
        if not a.passes(dtype):
            bad.append((name, a))
    return bad


def one_step_disagreements(params, Xb, Yb):
    """The one-step backward of exercise 2 (cross_entropy_backward -> dlogits) and exercise 3
    (batchnorm_backward -> dhprebn, fed autograd's dhpreact), and every gradient of fast_backprop,
    against autograd: [(what, Agreement)] for those breaking the tolerance."""
    dtype = params["C"].dtype
    _, t = atomic.forward(params, Xb, Yb)
    require(resolvable(t["hprebn"], dtype))
    _, ref = autograd_backprop(params, Xb, Yb)
    scales = atomic_term_scales(t, Xb)
    pairs = [("dlogits", atomic.cross_entropy_backward(t["logits"], Yb), "logits"),
             ("dhprebn", atomic.batchnorm_backward(ref["hpreact"], t["bngain"], t["bnraw"], t["bnvar_inv"]), "hprebn")]
    _, fast = atomic.fast_backprop(params, Xb, Yb)
    pairs += [(f"fast {name}", g, name) for name, g in fast.items()]
    bad = []
    for what, ours, name in pairs:
        assert ours.shape == ref[name].shape and ours.dtype == dtype, what
        a = agreement(ours, ref[name], scales[name])
        if not a.passes(dtype):
            bad.append((what, a))
    return bad


@st.composite
def lecture_params(draw, dtype=None):
    """Params, Xb, Yb for the broken-up graph: random vocabulary, block, embedding, hidden and batch
    sizes, initialisation scale and dtype."""
    dtype = dtype or draw(DTYPES)
    V, block, E = draw(st.integers(2, 12)), draw(st.integers(1, 4)), draw(st.integers(1, 6))
    H, n = draw(st.integers(1, 12)), draw(st.integers(2, 24))
    scale = draw(SCALES)
    shapes = dict(C=(V, E), W1=(block * E, H), b1=(H,), W2=(H, V), b2=(V,), bngain=(1, H), bnbias=(1, H))
    params = {k: draw(hnp.arrays(dtype, s, elements=st.floats(-1, 1, width=32, allow_subnormal=False),
                                 unique=True), label=k) for k, s in shapes.items()}
    params["W1"] *= np.asarray(scale, dtype)
    params["W2"] *= np.asarray(scale, dtype)
    params["bngain"] += np.asarray(1, dtype)
    Xb = draw(hnp.arrays(np.int64, (n, block), elements=st.integers(0, V - 1)), label="Xb")
    Yb = draw(hnp.arrays(np.int64, n, elements=st.integers(0, V - 1)), label="Yb")
    return params, Xb, Yb
