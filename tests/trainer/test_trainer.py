import math
import re

import pytest
import torch
from torch.utils.data import Dataset

from vaebench.estimators import build_estimator
from vaebench.models.architectures import build_model
from vaebench.trainer import (
    Callback,
    CheckpointError,
    NonFiniteTrainingError,
    Trainer,
    TrainSection,
    load_checkpoint,
    train,
)

EVENT = (12,)


def _model(seed: int = 0, posterior: str = "planar"):
    torch.manual_seed(seed)
    kwargs = {"num_flows": 2} if posterior == "planar" else {}
    model = build_model(
        {"name": "mlp_burda", "latent_dim": 3, "hidden": (8,)},
        posterior=posterior,
        posterior_kwargs=kwargs,
        event_shape=EVENT,
        likelihood="bernoulli",
    )
    return model.double()


def _data(n: int = 40, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, *EVENT, generator=g, dtype=torch.float64) < 0.3).double()


class _Binarized(Dataset):
    """Dynamic binarization with its own generator and a state_dict, like the datasets' one should."""

    def __init__(self, gray, seed=0):
        self.gray, self.g = gray, torch.Generator().manual_seed(seed)

    def __len__(self):
        return self.gray.shape[0]

    def __getitem__(self, i):
        return (torch.rand(self.gray[i].shape, generator=self.g, dtype=self.gray.dtype) < self.gray[i]).double()

    def state_dict(self):
        return {"g": self.g.get_state()}

    def load_state_dict(self, state):
        self.g.set_state(state["g"])


class _Interrupt(Callback):
    def __init__(self, at_step):
        self.at_step = at_step

    def on_step_end(self, trainer, step, loss):
        if step == self.at_step:
            raise KeyboardInterrupt


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("stateful_data", [False, True])
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, stateful_data):
    gray = _data() * 0.8 + 0.1
    make_data = (lambda: _Binarized(gray)) if stateful_data else (lambda: _data())
    cfg = {"epochs": 4, "batch_size": 8, "seed": 3, "progress": False}  # 5 steps per epoch

    def est():
        return build_estimator("iwae", num_samples=3)

    full = _model()
    ref = train(full, est(), make_data(), _data(8, seed=9), checkpoint_dir=tmp_path / "a", **cfg)

    interrupted = _model()
    with pytest.raises(KeyboardInterrupt):  # mid-epoch 3, after epochs 1 and 2 were saved
        train(
            interrupted,
            est(),
            make_data(),
            _data(8, seed=9),
            checkpoint_dir=tmp_path / "b",
            callbacks=[_Interrupt(12)],
            **cfg,
        )
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 2
    resumed_model = _model(seed=123)  # even another init: the checkpoint's weights win
    torch.manual_seed(999)  # and another global RNG state: the checkpoint's RNG wins
    res = train(resumed_model, est(), make_data(), _data(8, seed=9), checkpoint_dir=tmp_path / "b", **cfg)

    assert res.resumed_from == 2 and res.epochs == 4 and res.steps == ref.steps == 20
    assert torch.equal(_params(resumed_model), _params(full))
    for key in ("train_bound", "valid_bound", "lr", "steps"):
        assert res.curves[key] == ref.curves[key], key


class _LastOnDisk(Callback):
    """The epoch that last.pt holds at each epoch's end (None: none written yet)."""

    def __init__(self, path):
        self.path, self.seen = path, []

    def on_epoch_end(self, trainer, record):
        saved = load_checkpoint(self.path)
        self.seen.append(None if saved is None else saved["epoch"])


def _train_with_checkpoints(folder, callback, interval):
    """4 epochs of 5 steps with early stopping's best model, checkpoints every `interval` s."""
    return train(
        _model(),
        build_estimator("iwae", num_samples=2),
        _data(),
        _data(8, seed=9),
        epochs=4,
        batch_size=8,
        early_stopping_patience=10,
        checkpoint_dir=folder,
        callbacks=[callback],
        checkpoint_interval_s=interval,
        progress=False,
    )


@pytest.mark.parametrize(("interval", "expected"), [(0.0, [1, 2, 3, 4]), (3600.0, [None, None, None, 4])])
def test_checkpoints_reach_the_disk_at_most_every_interval_and_at_the_end(tmp_path, interval, expected):
    probe = _LastOnDisk(tmp_path / "last.pt")
    _train_with_checkpoints(tmp_path, probe, interval)
    assert probe.seen == expected
    last, best = load_checkpoint(tmp_path / "last.pt"), load_checkpoint(tmp_path / "best.pt")
    assert last["finished"] and best["epoch"] == last["best_epoch"]


def test_an_interrupt_writes_the_last_epoch_boundary_and_its_best_model(tmp_path):
    with pytest.raises(KeyboardInterrupt):  # mid-epoch 3; nothing was on disk before (interval 1 h)
        _train_with_checkpoints(tmp_path, _Interrupt(12), 3600.0)
    last, best = load_checkpoint(tmp_path / "last.pt"), load_checkpoint(tmp_path / "best.pt")
    assert last["epoch"] == 2 and not last["finished"]
    assert best["epoch"] == last["best_epoch"] and best["epoch"] in (1, 2)


def test_finished_run_is_loaded_not_recomputed(tmp_path):
    data = _data()
    model = _model()
    first = train(
        model,
        build_estimator("iwae", num_samples=2),
        data,
        _data(8),
        epochs=2,
        batch_size=10,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    calls = []

    class Counting:
        name, num_samples = "iwae", 2

        def __call__(self, m, x):
            calls.append(1)
            raise AssertionError("a finished run must not train again")

    other = _model(seed=5)
    again = train(other, Counting(), data, _data(8), epochs=2, batch_size=10, checkpoint_dir=tmp_path, progress=False)
    assert not calls and again.resumed_from == 2 and again.curves == first.curves
    assert torch.equal(_params(other), _params(model))


def test_checkpoint_of_another_run_is_refused(tmp_path):
    data = _data()
    train(
        _model(),
        build_estimator("iwae", num_samples=2),
        data,
        epochs=1,
        batch_size=10,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    with pytest.raises(CheckpointError, match=r"batch_size: 10 -> 20.*another checkpoint_dir"):
        train(
            _model(),
            build_estimator("iwae", num_samples=2),
            data,
            epochs=1,
            batch_size=20,
            checkpoint_dir=tmp_path,
            progress=False,
        )


class _PoisonParameter(Callback):
    """Writes a NaN into one parameter after a given step (a diverged update)."""

    def __init__(self, name, at_step):
        self.name, self.at_step = name, at_step

    def on_step_end(self, trainer, step, loss):
        if step == self.at_step:
            with torch.no_grad():
                dict(trainer.model.named_parameters())[self.name][0, 0] = math.nan


def test_nan_parameter_is_named_with_its_module_step_and_term(tmp_path):
    model = _model()
    name = "decoder.net.net.2.weight"
    with pytest.raises(NonFiniteTrainingError) as info:
        train(
            model,
            build_estimator("iwae", num_samples=2),
            _data(),
            epochs=3,
            batch_size=8,
            checkpoint_dir=tmp_path,
            callbacks=[_PoisonParameter(name, 7)],
            progress=False,
        )
    err = info.value
    assert err.kind == "loss" and err.step == 7 and err.epoch == 1
    assert err.parameter == name and err.module == "decoder.net.net.2"
    assert "log_px_z" in err.terms and "log_q" not in err.terms
    msg = str(err)
    assert f"parameter '{name}' in module decoder.net.net.2 (Linear)" in msg
    assert "step 7 (epoch 1)" in msg and "last.pt (epoch 1)" in msg
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1  # the good checkpoint is kept


def test_nan_module_output_is_named():
    model = _model()
    layer = model.posterior.base.logvar

    def poison(module, args, out):
        return out * math.nan if model.training else out

    handle = layer.register_forward_hook(poison)
    with pytest.raises(NonFiniteTrainingError) as info:
        train(model, build_estimator("iwae", num_samples=2), _data(), epochs=1, batch_size=8, progress=False)
    handle.remove()
    err = info.value
    assert err.step == 0 and err.parameter is None
    assert err.module == "posterior.base.logvar"
    assert "first module with a non-finite output: posterior.base.logvar (Linear)" in str(err)
    assert "log_q" in err.terms


def test_nan_gradient_names_the_first_parameter_that_got_it():
    model = _model()
    target = "posterior.u.weight"  # a planar flow's (amortized) u
    param = dict(model.named_parameters())[target]
    state = {"step": 0}

    class Count(Callback):
        def on_step_end(self, trainer, step, loss):
            state["step"] = step

    param.register_hook(lambda g: g * math.nan if state["step"] >= 3 else g)
    with pytest.raises(NonFiniteTrainingError) as info:
        train(
            model,
            build_estimator("iwae", num_samples=2),
            _data(),
            epochs=2,
            batch_size=8,
            callbacks=[Count()],
            progress=False,
        )
    err = info.value
    assert err.kind == "gradient" and err.step == 3 and err.parameter == target
    assert f"first parameter with a non-finite gradient: '{target}' in module posterior.u (Linear)" in str(err)
    assert err.terms  # the terms whose gradient at posterior.u.weight is non-finite
    assert torch.isfinite(_params(model)).all()  # the bad step was not applied


def test_kl_warmup_sets_the_estimator_weight_each_step():
    est = build_estimator("elbo", num_samples=1)
    seen = []

    class Record(Callback):
        def on_step_end(self, trainer, step, loss):
            seen.append(trainer.estimator.kl_weight)

    res = train(
        _model(posterior="diagonal"),
        est,
        _data(),
        _data(8),
        epochs=3,
        batch_size=10,
        kl_warmup_epochs=2,
        callbacks=[Record()],
        progress=False,
    )
    assert seen == pytest.approx([0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1, 1, 1, 1])
    assert res.curves["kl_weight"] == pytest.approx([0.375, 0.875, 1.0])
    with pytest.raises(ValueError, match="kl_weight"):
        train(_model(), build_estimator("iwae", num_samples=2), _data(), epochs=1, kl_warmup_epochs=2, progress=False)


def test_early_stopping_restores_the_best_model(tmp_path):
    class WorseEachValidation:
        """Trains like IWAE; on validation (eval mode) reports a bound that only gets worse."""

        name, num_samples = "iwae", 2

        def __init__(self):
            self.inner, self.valid_calls = build_estimator("iwae", num_samples=2), 0

        def __call__(self, model, x):
            est = self.inner(model, x)
            if not model.training:
                self.valid_calls += 1
                est.bound = torch.full_like(est.bound, -float(self.valid_calls))
            return est

    model = _model()
    res = train(
        model,
        WorseEachValidation(),
        _data(),
        _data(8),
        epochs=10,
        batch_size=10,
        early_stopping_patience=2,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert res.stopped_early and res.epochs == 3 and res.best_epoch == 1 and res.best_valid_bound == -1
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == 1
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in best["model"].items())
    assert load_checkpoint(tmp_path / "last.pt")["finished"]


def test_iwae_schedule_max_steps_and_curves():
    res = train(
        _model(),
        build_estimator("iwae", num_samples=2),
        _data(),
        None,
        epochs=5,
        batch_size=20,
        schedule="iwae",
        progress=False,
    )
    assert res.curves["lr"] == pytest.approx([1e-3 * 10 ** (-i / 7) for i in (0, 1, 1, 1, 2)])
    assert res.curves["epoch"] == [1, 2, 3, 4, 5] and all(math.isnan(v) for v in res.curves["valid_bound"])
    assert set(res.curves) >= {"train_bound", "seconds", "examples_per_second", "kl_weight"}
    capped = train(
        _model(), build_estimator("iwae", num_samples=2), _data(), epochs=5, batch_size=20, max_steps=3, progress=False
    )
    assert capped.steps == 3 and capped.epochs == 2


def test_bad_configuration_raises_named_errors():
    with pytest.raises(ValueError, match="train.batch_size must be >= 1, got 0"):
        Trainer(_model(), build_estimator("iwae"), _data(), None, TrainSection(batch_size=0))
    with pytest.raises(ValueError, match=r"train.betas must be two numbers in \[0, 1\), got \[0.9, 1.5\]"):
        Trainer(_model(), build_estimator("iwae"), _data(), None, TrainSection(betas=[0.9, 1.5]))
    with pytest.raises(TypeError, match=r"\['batch_sise'\] that are not train-section keys.*did you mean 'batch_size'"):
        train(_model(), build_estimator("iwae"), _data(), batch_sise=8)
    with pytest.raises(ValueError, match="early_stopping_patience needs valid_data"):
        Trainer(_model(), build_estimator("iwae"), _data(), None, TrainSection(early_stopping_patience=3))
    with pytest.raises(TypeError, match="train_data"):
        Trainer(_model(), build_estimator("iwae"), iter([_data()]))
    with pytest.raises(ValueError, match="train_data is empty"):
        Trainer(_model(), build_estimator("iwae"), _data()[:0])


def test_progress_bars_render(capsys):
    train(_model(), build_estimator("iwae", num_samples=2), _data(), _data(8), epochs=1, batch_size=20, progress=True)
    assert "epochs" in capsys.readouterr().err


def test_nan_in_a_flow_names_the_flow_layer():
    model = _model()  # planar, two flows; posterior.w amortizes each flow's w (D per flow)
    with pytest.raises(NonFiniteTrainingError) as info:
        train(
            model,
            build_estimator("iwae", num_samples=2),
            _data(),
            epochs=1,
            batch_size=8,
            callbacks=[_PoisonBias("posterior.w.bias", index=4, at_step=2)],
            progress=False,
        )
    msg = str(info.value)
    assert info.value.parameter == "posterior.w.bias"
    # the posteriors' own detector, run in the replay, names the flow layer (0 or 1)
    assert re.search(r"planar: layer [01] produced a non-finite", msg), msg


class _PoisonBias(Callback):
    def __init__(self, name, index, at_step):
        self.name, self.index, self.at_step = name, index, at_step

    def on_step_end(self, trainer, step, loss):
        if step == self.at_step:
            with torch.no_grad():
                dict(trainer.model.named_parameters())[self.name][self.index] = math.nan
