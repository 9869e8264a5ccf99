"""RunConfig (defaults, checks, the schedule), the SGD optimizer's flat layout, and the layout
checkpoints are checked against, computed without building a model."""
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numpy_ninja.config import ConfigError, RunConfig
from numpy_ninja.models import build_model, parameter_count, state_shapes
from numpy_ninja.optim import SGD
from numpy_ninja.train import train_steps


def test_defaults_are_the_lectures():
    """Exercise 4 (makemore part 4) and the WaveNet of part 5 (decay after 3/4 of the steps)."""
    c = RunConfig()
    assert (c.model, c.block_size, c.n_embd, c.n_hidden, c.batch_size, c.steps, c.lr, c.lr_final,
            c.lr_decay_step, c.dtype) == ("mlp", 3, 10, 200, 32, 200_000, 0.1, 0.01, 100_000, "float32")
    w = RunConfig(model="wavenet", steps=1000)
    assert (w.block_size, w.n_embd, w.n_hidden, w.lr_decay_step) == (8, 24, 128, 750)


@pytest.mark.parametrize("setting, value, message", [
    ("model", "lstm", "must be one of mlp, wavenet, bigram, bengio, rnn, gru, bow, transformer"), ("steps", 0, "must be a positive integer"),
    ("steps", 2.0, "must be a positive integer"), ("steps", True, "must be a positive integer"),
    ("steps", 2**63, "64-bit"), ("batch_size", 1, "BatchNorm needs 2 rows"), ("seed", -1, ">= 0"),
    ("lr", float("nan"), "finite number >= 0"), ("lr_final", -0.5, "finite number >= 0"),
    ("lr", "0.1", "finite number >= 0"), ("dtype", "float16", "must be one of float32, float64"),
    ("n_hidden", 0, "positive integer"), ("data_sha256", "abc", "SHA-256"),
    ("lr_changes", [[5, 0.1]], "[step, lr, lr_final]"), ("lr_changes", [[500, 0.1, 0.1]], "after the last step"),
])
def test_bad_settings_are_one_line_naming_the_setting(setting, value, message):
    with pytest.raises(ConfigError) as e:
        RunConfig(**{"steps": 100, setting: value})
    assert e.value.name == setting and message in str(e.value) and "\n" not in str(e.value)


def test_wavenet_needs_a_power_of_two_context():
    with pytest.raises(ConfigError, match="power-of-two context"):
        RunConfig(model="wavenet", block_size=6)


def test_schedule_and_rate_changes_from_a_resumed_step():
    c = RunConfig(steps=100)
    assert [c.learning_rate(s) for s in (0, 49, 50, 99)] == [0.1, 0.1, 0.01, 0.01]
    d = c.with_rates(20, lr=0.05)
    assert [d.learning_rate(s) for s in (19, 20, 49, 50)] == [0.1, 0.05, 0.05, 0.01]
    e = d.with_rates(60, lr_final=0.001)
    assert e.lr_changes == ((20, 0.05, 0.01), (60, 0.05, 0.001))
    assert [e.learning_rate(s) for s in (20, 59, 60)] == [0.05, 0.01, 0.001]
    with pytest.raises(ConfigError, match="past its decay step"):
        e.with_rates(70, lr=0.2)
    assert RunConfig.from_dict(json.loads(json.dumps(e.to_dict()))) == e


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("steps"), "missing setting steps"), (lambda d: d.update(extra=1), "unknown setting extra"),
    (lambda d: d.update(n_hidden="200"), "n_hidden: must be a positive integer"),
])
def test_a_stored_configuration_is_complete_and_well_typed(change, message):
    d = RunConfig().to_dict()
    change(d)
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(d)


def test_sgd_state_dict_taken_before_training_stays_live():
    config = RunConfig(n_embd=2, n_hidden=4, batch_size=4, steps=3, lr=0.5, lr_final=0.5)
    model = build_model(config, 5)
    optimizer = SGD(model.parameters(), config.lr)
    state = model.state_dict()
    before = {k: v.copy() for k, v in state.items()}
    X, Y = np.random.default_rng(0).integers(0, 5, (20, 3)), np.random.default_rng(1).integers(0, 5, 20)
    train_steps(model, optimizer, X, Y, config, 0, 1, np.zeros(3))
    for name, p in model.named_parameters():
        assert state[name] is p.data
        np.testing.assert_array_equal(state[name], before[name] - np.float32(0.5) * p.grad)


@given(st.sampled_from(["mlp", "wavenet"]), st.integers(1, 9), st.integers(1, 5), st.integers(1, 6),
       st.integers(2, 30))
def test_state_shapes_are_those_of_the_built_model(name, context, n_embd, n_hidden, vocab_size):
    block_size = 2**context.bit_length() if name == "wavenet" else context  # wavenet: powers of two
    config = RunConfig(model=name, block_size=block_size, n_embd=n_embd, n_hidden=n_hidden)
    model = build_model(config, vocab_size)
    assert state_shapes(config, vocab_size) == {k: v.shape for k, v in model.state_dict().items()}
    assert parameter_count(config, vocab_size) == sum(p.data.size for p in model.parameters())
