"""When do the SNR scalings of Rainforth et al. 2018 hold? The measurements behind docs/snr.md.

Local log-log slopes of the floor-corrected group SNR against K (`snr_local_slopes`), beside
the ESS fraction ESS/K and the importance weights' relative variance Var w / (E w)^2, for
IWAE (encoder and decoder) and DReG (encoder):

    python scripts/snr_regime.py linear   # linear-Gaussian model, q = exact posterior shifted by delta
    python scripts/snr_regime.py digits   # the estimators suite's trained digits point, K up to 2000

`linear`: probabilistic PCA (D = 20, d = 5) with the affine posterior family set to the exact
posterior and its mean shifted by delta posterior standard deviations (Mahalanobis), so that
the weights' relative variance is exp(delta^2) - 1 exactly: 0 (exact), 0.28 (delta 0.5),
8.5 (delta 1.5), 520 (delta 2.5). `digits`: the point `suite=estimators budget=quick` measures
at (a diagonal VAE trained with the ELBO; `--epochs`, `--train-estimator` and
`--train-samples` choose another), on a small batch so that large K fits in minutes.
Each prints one line per (estimator, K) and writes the rows as JSON (`--out`).

References:
    Tighter Variational Bounds are Not Necessarily Better, Rainforth, Kosiorek, Le, Maddison,
    Igl, Wood, Teh, 2018, arXiv:1802.04537.
    Doubly Reparameterized Gradient Estimators for Monte Carlo Objectives, Tucker, Lawson, Gu,
    Maddison, 2018, arXiv:1810.04152.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from vaebench.estimators import build_estimator
from vaebench.evaluation import GradientStats, gradient_stats_sweep, snr_local_slopes, snr_slope


def _rows(tag: str, stats: list[GradientStats], groups: dict[str, list[str]]) -> list[dict[str, Any]]:
    """One row per (estimator, K): SNR with jackknife se per group, local slope into this K, ESS/K, relvar."""
    rows: list[dict[str, Any]] = []
    local = {g: snr_local_slopes(stats, g) for g in groups[stats[0].estimator]}
    overall = {g: snr_slope(stats, g) for g in groups[stats[0].estimator]}
    for i, st in enumerate(stats):
        row: dict[str, Any] = {
            "setting": tag,
            "estimator": st.estimator,
            "K": st.num_samples,
            "draws": st.num_draws,
            "batch": st.batch_size,
            "ess_fraction": st.ess_fraction,
            "weight_relvar": st.weight_relvar,
        }
        for g in groups[st.estimator]:
            gs = st.groups[g]
            row[f"{g}_snr"] = gs.snr_norm
            row[f"{g}_snr_se"] = math.nan if gs.snr_norm_se is None else gs.snr_norm_se
            # snr_norm = signal / noise: |E g| with the draws' floor removed, and sqrt(tr Var g)
            row[f"{g}_noise"] = math.sqrt(gs.variance_total)
            row[f"{g}_signal"] = gs.snr_norm * math.sqrt(gs.variance_total)
            row[f"{g}_local_slope"] = local[g][i - 1].slope if i else math.nan
            row[f"{g}_local_slope_se"] = local[g][i - 1].se if i else math.nan
            row[f"{g}_slope_all"] = overall[g].slope
            row[f"{g}_slope_all_se"] = overall[g].se
        rows.append(row)
    return rows


def _print(rows: list[dict[str, Any]], groups: list[str]) -> None:
    for r in rows:
        parts = [f"{r['setting']:>14} {r['estimator']:>5} K={r['K']:<5}"]
        for g in groups:
            if f"{g}_snr" in r:
                parts.append(
                    f"{g[:3]} snr {r[f'{g}_snr']:.4g}±{r[f'{g}_snr_se']:.2g} "
                    f"local {r[f'{g}_local_slope']:+.3f}±{r[f'{g}_local_slope_se']:.3f}"
                )
        parts.append(f"ESS/K {r['ess_fraction']:.3g} relvar {r['weight_relvar']:.3g}")
        print(" | ".join(parts), flush=True)


def linear(args: argparse.Namespace) -> list[dict[str, Any]]:
    from vaebench.models import LinearGaussianVAE

    g = torch.Generator().manual_seed(0)
    D, d, s = 20, 5, 0.5
    W = torch.randn(D, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    b = torch.randn(D, generator=g, dtype=torch.float64)
    model = LinearGaussianVAE.from_params(W, b, s)
    z = torch.randn(args.batch, d, generator=g, dtype=torch.float64)
    x = z @ W.T + b + s * torch.randn(args.batch, D, generator=g, dtype=torch.float64)
    direction = torch.randn(d, generator=g, dtype=torch.float64)
    direction /= direction.norm()
    post = model.posterior
    rows: list[dict[str, Any]] = []
    for delta in args.deltas:
        model.set_exact_posterior()
        with torch.no_grad():
            L = post.scale_tril()  # q's scale = the exact posterior's: shift by L u delta
            post.linear.bias.add_(delta * (L @ direction))
        tag = f"delta={delta:g} (relvar {math.expm1(delta**2):.3g})"
        for name in ("iwae", "dreg"):
            t0 = time.perf_counter()
            stats = gradient_stats_sweep(
                model,
                lambda k, name=name: build_estimator(name, num_samples=k),
                x,
                args.ks,
                num_draws=args.draws,
                seed=args.seed,
            )
            part = _rows(tag, stats, {"iwae": ["encoder", "decoder"], "dreg": ["encoder"]})
            _print(part, ["encoder", "decoder"])
            print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
            rows += part
    return rows


def digits(args: argparse.Namespace) -> list[dict[str, Any]]:
    from omegaconf import OmegaConf

    from vaebench.config import RunConfig
    from vaebench.evaluation import take_examples
    from vaebench.runner import adapters
    from vaebench.runner.resolve import resolve_cells
    from vaebench.runner.suite import load_suite

    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), {"suite": load_suite("estimators")})
    cfg.budget.name = "quick"
    cell = next(c for c in resolve_cells(cfg) if c.cell == "iwae")
    rc = cell.config
    if args.epochs is not None:
        rc.train.epochs = args.epochs
    data = adapters.load_data(rc, cell.seed)
    model = adapters.model_from_config(rc, data)
    epochs = adapters.train_epochs(rc)
    t0 = time.perf_counter()
    if epochs > 0:
        trainer = adapters.estimator_from_config(
            rc, name=args.train_estimator, num_samples=args.train_samples, kwargs={}
        )
        ckpt = Path(args.checkpoints) / f"{args.train_estimator}{args.train_samples}_e{epochs}"
        adapters.train_from_config(
            model, trainer, data, rc, checkpoint_dir=ckpt, seed=cell.seed, device=torch.device("cpu"), progress=False
        )
    print(f"trained {epochs} epochs with {args.train_estimator}-{args.train_samples}: {time.perf_counter() - t0:.0f} s")
    x = take_examples(data.test, args.batch)
    tag = f"{args.train_estimator}{args.train_samples}_e{epochs}_B{args.batch}"
    rows: list[dict[str, Any]] = []
    for name in args.estimators:
        t0 = time.perf_counter()
        stats = gradient_stats_sweep(
            model,
            lambda k, name=name: build_estimator(name, num_samples=k),
            x,
            args.ks,
            num_draws=args.draws,
            seed=args.seed,
        )
        groups = {"iwae": ["encoder", "decoder"], "dreg": ["encoder"], "elbo_mc": ["encoder", "decoder"]}
        part = _rows(tag, stats, groups)
        _print(part, ["encoder", "decoder"])
        print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
        rows += part
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    lin = sub.add_parser("linear")
    lin.add_argument("--deltas", type=float, nargs="+", default=[0.0, 0.5, 1.5, 2.5])
    lin.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024, 4096])
    lin.add_argument("--draws", type=int, default=400)
    lin.add_argument("--batch", type=int, default=8)
    dig = sub.add_parser("digits")
    dig.add_argument("--ks", type=int, nargs="+", default=[1, 5, 50, 500, 2000])
    dig.add_argument("--draws", type=int, default=200)
    dig.add_argument("--batch", type=int, default=4)
    dig.add_argument("--epochs", type=int, default=None, help="default: the suite's quick budget (30)")
    dig.add_argument("--train-estimator", default="elbo_mc")
    dig.add_argument("--train-samples", type=int, default=1)
    dig.add_argument("--estimators", nargs="+", default=["iwae", "dreg"])
    dig.add_argument("--checkpoints", default=os.environ.get("TMPDIR", "/tmp") + "/snr_regime")
    for sp in (lin, dig):
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = p.parse_args()
    rows = linear(args) if args.what == "linear" else digits(args)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
