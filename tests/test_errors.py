"""One home for the exception types: every module that raised its own now re-exports vaebench.errors'."""

import pytest

from vaebench import errors, estimators, posteriors, results, trainer
from vaebench.datasets import download
from vaebench.registry import Registry
from vaebench.runner import resolve, suite
from vaebench.trainer import checkpoint


def test_the_old_homes_reexport_the_one_class():
    assert estimators.NonFiniteError is posteriors.NonFiniteError is trainer.NonFiniteError is errors.NonFiniteError
    assert trainer.NonFiniteTrainingError is errors.NonFiniteTrainingError
    assert results.RecordError is errors.RecordError
    assert suite.SuiteError is errors.SuiteError
    assert resolve.ConfigError is errors.ConfigError
    assert checkpoint.CheckpointError is errors.CheckpointError
    assert download.DatasetNotFound is errors.DatasetNotFound
    assert download.ChecksumMismatch is errors.ChecksumMismatch


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_is_a_vaebench_error(name):
    assert issubclass(getattr(errors, name), errors.VaebenchError)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (errors.UnknownNameError, KeyError),
        (errors.SuiteError, ValueError),
        (errors.ConfigError, ValueError),
        (errors.RecordError, ValueError),
        (errors.CheckpointError, RuntimeError),
        (errors.DatasetNotFound, FileNotFoundError),
        (errors.ChecksumMismatch, ValueError),
        (errors.NonFiniteError, FloatingPointError),
    ],
)
def test_errors_keep_the_builtin_a_caller_catches(error, builtin):
    assert issubclass(error, builtin)


def test_each_place_a_nan_is_found_is_a_nonfinite_error():
    estimate = errors.NonFiniteEstimateError("log_q", 3, "1 of 4 entries are NaN or inf")
    posterior = errors.NonFinitePosteriorError("planar", 2, "z", "1 of 4 entries are NaN")
    training = errors.NonFiniteTrainingError("loss", 5, 0, "non-finite loss at step 5")
    for error in (estimate, posterior, training):
        assert isinstance(error, errors.NonFiniteError)
    assert (estimate.term, estimate.step) == ("log_q", 3)
    assert "non-finite log_q at step 3" in str(estimate)
    assert (posterior.family, posterior.layer, posterior.quantity) == ("planar", 2, "z")
    assert "planar: layer 2 produced a non-finite z" in str(posterior)
    assert (training.kind, training.step, training.epoch) == ("loss", 5, 0)


def test_unknown_name_message_is_not_quoted():
    registry: Registry[int] = Registry("thing")
    with pytest.raises(errors.UnknownNameError) as info:
        registry.get("nope")
    assert not str(info.value).startswith("'")
