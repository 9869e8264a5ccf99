"""The checking tools themselves: finite differences on arrays of any memory layout, and the
oracle's entry points (a single layer and a network give the same reference)."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numpy_ninja as nn
from numpy_ninja.gradcheck import numerical_grad
from oracle.reference.twin import run_twin

LAYOUTS = {"C": np.ascontiguousarray, "F": np.asfortranarray, "reversed": lambda a: a[::-1],
           "transposed": lambda a: a.T}


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                  elements=st.floats(-2, 2)), st.sampled_from(sorted(LAYOUTS)))
def test_numerical_grad_of_any_memory_layout(x, layout):
    """numerical_grad perturbs x itself, whatever its strides (a reshape of an F-ordered x is a
    copy, and perturbing that copy once gave a zero gradient)."""
    x, h = LAYOUTS[layout](x), 1e-6
    w = np.linspace(-1.5, 2.0, x.size).reshape(x.shape)

    def f():  # gradient 2 w x
        return float(np.sum(w * x**2))

    num = numerical_grad(f, x, h)
    assert num.shape == x.shape
    # f is quadratic: central differences are exact up to the rounding of f(x +- h), about eps
    # times its terms, sum|w x^2| plus the perturbed one's |w| (2|x| h + h^2), over h
    terms = np.sum(np.abs(w * x**2)) + np.abs(w).max() * (2 * np.abs(x).max() * h + h * h)
    assert np.abs(num - 2 * w * x).max() <= 10 * np.finfo(np.float64).eps * terms / h


def one_layer(kind, C, dtype):
    return {"linear": lambda: nn.Linear(C, 3, dtype=dtype),
            "biasless": lambda: nn.Linear(C, 3, bias=False, dtype=dtype),
            "unbiased": lambda: nn.BatchNorm1d(C, dtype=dtype),
            "biased": lambda: nn.BatchNorm1d(C, unbiased=False, dtype=dtype),
            "embedding": lambda: nn.Embedding(5, C, dtype=dtype), "tanh": nn.Tanh,
            "flatten": nn.Flatten, "consecutive": lambda: nn.FlattenConsecutive(2)}[kind]()


@given(st.data(), hnp.floating_dtypes(sizes=(32, 64), endianness="="),
       st.sampled_from(["linear", "biasless", "unbiased", "biased", "embedding", "tanh", "flatten",
                        "consecutive"]), st.booleans())
def test_run_twin_on_a_layer_is_run_twin_on_its_sequential(data, dtype, kind, training):
    """The per-layer entry point: run_twin(layer) gives, bitwise, what run_twin(Sequential([layer]))
    gives, under the layer's own names ("weight", not "0.weight"), shapes and dtype."""
    N, T, C = data.draw(st.integers(1, 4)), data.draw(st.sampled_from([2, 4])), data.draw(st.integers(1, 4))
    layer = one_layer(kind, C, dtype).train(training)
    if kind == "embedding":
        x = data.draw(hnp.arrays(np.int64, (N, T), elements=st.integers(0, 4)))
    else:
        x = data.draw(hnp.arrays(dtype, (N, T, C), elements=st.floats(-2, 2, width=32)))
    dout = data.draw(hnp.arrays(dtype, layer(x).shape, elements=st.floats(-2, 2, width=32)))
    alone, wrapped = run_twin(layer, x, dout=dout), run_twin(nn.Sequential([layer]), x, dout=dout)
    ours = dict(layer.named_parameters())
    assert set(alone["grads"]) == set(ours)
    assert set(alone["buffers"]) == {name for name, _ in layer.named_buffers()}
    for name, g in alone["grads"].items():
        assert g.shape == ours[name].shape and g.dtype == dtype
        assert np.array_equal(g, wrapped["grads"]["0." + name])
    for name, b in alone["buffers"].items():
        assert np.array_equal(b, wrapped["buffers"]["0." + name])
    assert np.array_equal(alone["out"], wrapped["out"])
    if kind == "embedding":
        assert alone["dx"] is None and wrapped["dx"] is None
    else:
        assert alone["dx"].shape == x.shape and np.array_equal(alone["dx"], wrapped["dx"])
