"""The checking tools themselves: finite differences on arrays of any memory layout, and the
oracle's entry points (a single layer and a network give the same reference)."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numpy_ninja.gradcheck import numerical_grad

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
