"""The package's exception types, in one place.

Every error vaebench raises on purpose derives from `VaebenchError` and from the builtin
exception a caller would expect (`ValueError` for a bad value, `FileNotFoundError` for a
missing file, ...), so `except ValueError` keeps working and `except VaebenchError` catches
everything the package raises by design. The modules that raise them re-export their own
(`vaebench.results.RecordError` is `vaebench.errors.RecordError`).

A NaN or infinity is one concept with one name, `NonFiniteError`; where it was found is
the subclass, each with the attributes that locate it:

    NonFiniteError
    +-- NonFiniteEstimateError   an estimate's term (estimators.check_finite)
    +-- NonFinitePosteriorError  a posterior's layer (posteriors.detect_nonfinite)
    +-- NonFiniteTrainingError   a training step's loss or gradient (the trainer)
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ChecksumMismatch",
    "ConfigError",
    "DatasetNotFound",
    "NonFiniteError",
    "NonFiniteEstimateError",
    "NonFinitePosteriorError",
    "NonFiniteTrainingError",
    "RecordError",
    "SuiteError",
    "UnknownNameError",
    "VaebenchError",
]


class VaebenchError(Exception):
    """The root of the errors vaebench raises on purpose (their message is the whole story)."""


class UnknownNameError(VaebenchError, KeyError):
    """A name that is not in a registry; the message lists what is."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class SuiteError(VaebenchError, ValueError):
    """A suite that cannot be found or whose file does not match the suite schema."""


class ConfigError(VaebenchError, ValueError):
    """A suite layer or an override that does not fit the run schema."""


class RecordError(VaebenchError, ValueError):
    """A record file that cannot be read or does not match the record schema."""


class CheckpointError(VaebenchError, RuntimeError):
    """A checkpoint that cannot be read or does not belong to this run."""


class DatasetNotFound(VaebenchError, FileNotFoundError):
    """A dataset's files are missing from the data directory and could not be downloaded."""


class ChecksumMismatch(VaebenchError, ValueError):
    """A file's size or checksum differs from the published one."""


class NonFiniteError(VaebenchError, FloatingPointError):
    """A NaN or infinity; the subclass says where it was found (catch this one for all of them)."""


class NonFiniteEstimateError(NonFiniteError):
    """A NaN or infinity in an estimate, naming the term where it first shows.

    Attributes:
        term: the first non-finite term, in the order the bound is built ("log_px_z",
            "log_pz", "log_q", "kl", ..., then "log_w", "bound", "surrogate").
        step: the training step passed to `check_finite`, or None.
    """

    def __init__(self, term: str, step: int | None, detail: str) -> None:
        self.term = term
        self.step = step
        where = "" if step is None else f" at step {step}"
        super().__init__(
            f"non-finite {term}{where} ({detail}); lower the learning rate, clip gradients, or run "
            "the batch under vaebench.posteriors.detect_nonfinite() to find the layer"
        )


class NonFinitePosteriorError(NonFiniteError):
    """A NaN or infinity inside a posterior, with where it was first seen.

    Attributes:
        family: the posterior family's registry name (or class name).
        layer: the flow layer index (0-based), or None for the base distribution.
        quantity: what was non-finite, e.g. "z", "log|det|", "mu", "logvar".
    """

    def __init__(self, family: str, layer: int | None, quantity: str, detail: str) -> None:
        self.family = family
        self.layer = layer
        self.quantity = quantity
        where = "the base distribution" if layer is None else f"layer {layer}"
        super().__init__(
            f"{family}: {where} produced a non-finite {quantity} ({detail}); check the "
            "encoder features and the learning rate, or clip gradients"
        )


class NonFiniteTrainingError(NonFiniteError):
    """Training met a NaN or infinity; the run stops instead of continuing corrupted.

    Attributes:
        kind: "loss" or "gradient".
        step, epoch: the global optimizer step (0-based) and epoch where it first appeared.
        parameter: the first parameter (dotted name) that is non-finite or got a non-finite grad.
        module: the first module (dotted name) with a non-finite output in the replayed step.
        terms: the estimator terms that are non-finite (loss) or carry the non-finite gradient.
    """

    def __init__(
        self,
        kind: str,
        step: int,
        epoch: int,
        message: str,
        *,
        parameter: str | None = None,
        module: str | None = None,
        terms: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.kind, self.step, self.epoch = kind, step, epoch
        self.parameter, self.module, self.terms = parameter, module, terms
