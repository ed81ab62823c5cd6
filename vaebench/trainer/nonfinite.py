"""Stopping a run at the first non-finite loss or gradient, with where it came from.

A NaN seen in the loss says nothing about where it was born. When the trainer sees one it
replays the failing step from the same RNG state and names, in this order of evidence:
a parameter that is already non-finite, the first module (in execution order) whose output
is non-finite, the posterior flow layer (via `vaebench.posteriors.nonfinite.detect_nonfinite`),
the estimator terms (log p(x|z), log p(z), log q) that are non-finite or whose gradient is, and
for a gradient the first parameter (module path, e.g. `posterior.flows.3.u`) that received it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import NonFiniteTrainingError
from ..log_weights import TERMS

__all__ = ["NonFiniteTrainingError", "diagnose_nonfinite", "first_nonfinite_gradient", "first_nonfinite_parameter"]


def _module_of(model: nn.Module, param_name: str) -> str:
    path = param_name.rpartition(".")[0]
    if not path:
        return f"{type(model).__name__} (the root module)"
    return f"{path} ({type(model.get_submodule(path)).__name__})"


def first_nonfinite_parameter(model: nn.Module) -> str | None:
    """The dotted name of the first parameter holding a NaN or infinity, or None."""
    for name, p in model.named_parameters():
        if not torch.isfinite(p.detach()).all():
            return name
    return None


def first_nonfinite_gradient(model: nn.Module) -> str | None:
    """The dotted name of the first parameter whose .grad holds a NaN or infinity, or None."""
    for name, p in model.named_parameters():
        if p.grad is not None and not torch.isfinite(p.grad).all():
            return name
    return None


def _tensors(out: Any) -> Iterator[Tensor]:
    if isinstance(out, Tensor):
        yield out
    elif isinstance(out, (tuple, list)):
        for o in out:
            yield from _tensors(o)
    elif isinstance(out, dict):
        for o in out.values():
            yield from _tensors(o)


@contextlib.contextmanager
def _first_bad_module(model: nn.Module) -> Iterator[list[str]]:
    """Within the context, the list gets the name of the first module with a non-finite output."""
    found: list[str] = []

    def hook(name: str) -> Callable[..., None]:
        def check(module: nn.Module, args: Any, out: Any) -> None:
            if not found and any(t.is_floating_point() and not torch.isfinite(t).all() for t in _tensors(out)):
                found.append(f"{name} ({type(module).__name__})")

        return check

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        yield found
    finally:
        for h in handles:
            h.remove()


def _detect_flows() -> contextlib.AbstractContextManager[None]:
    try:
        from ..posteriors.nonfinite import detect_nonfinite
    except ImportError:  # a posteriors package without the detector: no flow-level detail
        return contextlib.nullcontext()
    return detect_nonfinite()


def diagnose_nonfinite(
    kind: str,
    model: nn.Module,
    estimator: Callable[[nn.Module, Tensor], Any],
    x: Tensor,
    *,
    replay: Callable[[], None],
    step: int,
    epoch: int,
    value: str,
    checkpoint_note: str = "",
    components: Mapping[str, Tensor] | None = None,
) -> NonFiniteTrainingError:
    """Build the error for a non-finite `kind` ("loss" or "gradient") seen at `step`.

    `replay()` restores the RNG state the failing step started from, so the estimator and the
    model's log weights are re-drawn with the same samples. `components` are the failing
    estimate's named terms (`Estimate.components`): for a loss they name the bad term directly.
    """
    parts = [f"non-finite {kind} ({value}) at step {step} (epoch {epoch})"]
    param = first_nonfinite_parameter(model)
    grad_param = first_nonfinite_gradient(model) if kind == "gradient" else None
    if param is not None:
        parts.append(f"parameter '{param}' in module {_module_of(model, param)} is itself non-finite")
    if grad_param is not None:
        parts.append(
            f"first parameter with a non-finite gradient: '{grad_param}' in module {_module_of(model, grad_param)}"
        )

    module: str | None = None
    flow_detail: str | None = None
    replay()
    with _first_bad_module(model) as found:
        try:
            with _detect_flows(), torch.enable_grad():
                estimator(model, x)
        except FloatingPointError as e:  # the posterior's detector names the flow layer
            flow_detail = str(e)
        except Exception as e:  # noqa: BLE001 - diagnosis must not hide the original failure
            flow_detail = f"(replaying the step raised {type(e).__name__}: {e})"
    if found:
        module = found[0].split(" ")[0]
        parts.append(f"first module with a non-finite output: {found[0]}")
    if flow_detail:
        parts.append(flow_detail)

    terms = _bad_components(components) if kind == "loss" and components else ()
    if not terms:
        terms = _bad_terms(model, x, replay, kind, grad_param, int(getattr(estimator, "num_samples", 1)))
    if terms:
        what = (
            "non-finite estimator terms" if kind == "loss" else f"terms whose gradient at '{grad_param}' is non-finite"
        )
        parts.append(f"{what}: {', '.join(terms)}")
    elif kind == "gradient" and grad_param is not None and callable(getattr(model, "log_weights", None)):
        parts.append("each term's gradient is finite: the estimator's combination of them (its weights) is not")
    if checkpoint_note:
        parts.append(checkpoint_note)
    return NonFiniteTrainingError(
        kind, step, epoch, "; ".join(parts), parameter=grad_param or param, module=module, terms=terms
    )


def _bad_components(components: Mapping[str, Tensor]) -> tuple[str, ...]:
    bad = []
    for name, value in components.items():
        v = value.detach()
        # a -inf log density is a zero weight, not a failure; a KL or bound must be finite
        broken = torch.isnan(v) | torch.isposinf(v) if name.startswith("log_") else ~torch.isfinite(v)
        if bool(broken.any()):
            bad.append(name)
    return tuple(bad)


def _bad_terms(
    model: nn.Module, x: Tensor, replay: Callable[[], None], kind: str, grad_param: str | None, k: int
) -> tuple[str, ...]:
    if not callable(getattr(model, "log_weights", None)):
        return ()
    replay()  # the same draws as the failing step (for an estimator that samples via log_weights)
    try:
        with torch.enable_grad():
            # A model method: nn.Module.__getattr__ types attributes as Tensor | Module.
            lw = model.log_weights(x, k)  # type: ignore[operator]
            names = [t for t in TERMS if isinstance(getattr(lw, t, None), Tensor)]
            if kind == "loss" or grad_param is None:
                return tuple(t for t in names if not torch.isfinite(getattr(lw, t)).all())
            p = dict(model.named_parameters())[grad_param]
            bad = []
            for t in names:
                term = getattr(lw, t)
                if not term.requires_grad:
                    continue
                (g,) = torch.autograd.grad(term.sum(), [p], retain_graph=True, allow_unused=True)
                if g is not None and not torch.isfinite(g).all():
                    bad.append(t)
            return tuple(bad)
    except Exception:  # noqa: BLE001 - a failing diagnosis must not replace the error being reported
        return ()
