"""Sylvester normalizing flows (van den Berg et al. 2018), amortized: the O-SNF, H-SNF and
T-SNF variants, registered as `sylvester_orthogonal`, `sylvester_householder` and
`sylvester_triangular`."""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..initialization import zero_init
from .base import POSTERIORS
from .flow import AmortizedFlow
from .householder import reflect

__all__ = [
    "HouseholderSylvesterFlow",
    "OrthogonalSylvesterFlow",
    "SylvesterFlow",
    "TriangularSylvesterFlow",
    "bjorck_orthogonalize",
]

Variant = Literal["orthogonal", "householder", "triangular"]
Orthogonalization = Literal["bjorck", "qr"]
_VARIANTS = ("orthogonal", "householder", "triangular")
_ORTHOGONALIZATIONS = ("bjorck", "qr")


class SylvesterFlow(AmortizedFlow):
    """Diagonal Gaussian base, then `num_flows` Sylvester layers with every parameter from h.

        f(z) = z + Q R1 tanh(R2 Q^T z + b)
        log|det df/dz| = sum_i log|1 + R1_ii R2_ii tanh'(R2 Q^T z + b)_i|

    Q: (D, M) has orthonormal columns and R1, R2: (M, M) are upper-triangular, so by
    Sylvester's determinant identity det(I_D + Q R1 diag(h') R2 Q^T) = det(I_M + diag(h') R2 R1)
    is triangular. R1_ii = tanh(a_i), R2_ii = tanh(c_i) make R1_ii R2_ii > -1 >= -1 / sup tanh',
    the paper's invertibility condition. Evaluated as
        1 + R1_ii R2_ii tanh' = (1 + tanh a tanh c) - tanh a tanh c t^2,   t = tanh(pre_i)
    with log(1 + tanh a tanh c) = log cosh(a + c) - log cosh a - log cosh c: both terms are
    non-negative when the product is negative, so the edge R1_ii R2_ii -> -1 stays finite.

    Variants (how Q is made):
        orthogonal (O-SNF): an amortized (D, M) matrix with orthonormalized columns; by
            default (`orthogonalization="bjorck"`) the paper's iteration
            Q <- Q (I + (I - Q^T Q) / 2) (Bjorck & Bowie 1971) from Q / |Q|_F, until
            max|Q^T Q - I| < 100 eps(dtype) or `max_orthogonalization_steps`. Its step count
            grows with the condition number (30 to 36 steps for a batch of 256 random square
            32 x 32 matrices, 7 to 11 for 64 x 16, measured), each a batched matmul pair plus one
            host sync; `orthogonalization="qr"` takes the Q factor of torch.linalg.qr
            instead (exact, differentiable for full-rank input, far cheaper; a different
            but equally valid map onto matrices with orthonormal columns).
        householder (H-SNF): Q = H_1 ... H_n, n = `num_householder` amortized reflections;
            M = D. Q is applied as reflections, never formed.
        triangular (T-SNF): Q is the identity on even layers and the order reversal on odd
            layers (the paper's alternating permutation); M = D.

    Shapes: h: (B, H) -> z: (K, B, D), log_q: (K, B); R1, R2: (B, M, M) per layer.

    References:
        Sylvester Normalizing Flows for Variational Inference. van den Berg, Hasenclever,
            Tomczak, Welling, 2018. arXiv:1803.05649.
    """

    _entries: Tensor  # buffer: where R1's (and R2's) diagonal, then strict upper triangle, go in M*M

    def __init__(
        self,
        feature_dim: int,
        latent_dim: int,
        num_flows: int = 4,
        *,
        variant: Variant = "orthogonal",
        num_ortho_vecs: int | None = None,
        num_householder: int = 4,
        orthogonalization: Orthogonalization = "bjorck",
        max_orthogonalization_steps: int = 100,
    ) -> None:
        super().__init__(feature_dim, latent_dim, num_flows)
        if variant not in _VARIANTS:
            raise ValueError(f"SylvesterFlow: variant must be one of {', '.join(_VARIANTS)}, got {variant!r}")
        if orthogonalization not in _ORTHOGONALIZATIONS:
            raise ValueError(
                "SylvesterFlow: orthogonalization must be one of "
                f"{', '.join(_ORTHOGONALIZATIONS)}, got {orthogonalization!r}"
            )
        d = latent_dim
        m = d if num_ortho_vecs is None else num_ortho_vecs
        if variant == "orthogonal" and not (isinstance(m, int) and 1 <= m <= d):
            raise ValueError(f"SylvesterFlow: num_ortho_vecs (M) must be an int in [1, D={d}], got {m!r}")
        if variant != "orthogonal" and num_ortho_vecs not in (None, d):
            raise ValueError(
                f"SylvesterFlow: num_ortho_vecs only applies to variant='orthogonal' "
                f"(the {variant} variant has M = D = {d}), got {num_ortho_vecs!r}"
            )
        if variant == "householder" and (
            isinstance(num_householder, bool) or not isinstance(num_householder, int) or num_householder < 1
        ):
            raise ValueError(f"SylvesterFlow: num_householder must be an int >= 1, got {num_householder!r}")
        self.variant = variant
        self.num_ortho_vecs = m
        self.num_householder = num_householder
        steps = max_orthogonalization_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"SylvesterFlow: max_orthogonalization_steps must be an int >= 1, got {steps!r}")
        self.orthogonalization = orthogonalization
        self.max_orthogonalization_steps = max_orthogonalization_steps
        n = num_flows

        # Amortized layers: the strictly upper-triangular entries of R1 and R2 (M = 1 has
        # none), the raw diagonals, b and what makes Q. None where empty, since zero-width
        # Linear layers warn at init (and num_flows = 0 never reads them).
        def linear(width: int) -> nn.Linear | None:
            return nn.Linear(feature_dim, width) if width else None

        self.triangles = linear(n * m * (m - 1))
        self.diag1 = linear(n * m)
        self.diag2 = linear(n * m)
        self.bias = linear(n * m)
        self.q = linear({"orthogonal": n * d * m, "householder": n * num_householder * d}.get(variant, 0))
        rows, cols = torch.triu_indices(m, m, offset=1)
        entries = torch.cat((torch.arange(m) * (m + 1), rows * m + cols))  # flat (i, j) -> i * M + j
        self.register_buffer("_entries", entries, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot heads, R1 = 0 (its diagonal head and its half of the triangle head zero):
        f(z) = z + Q R1 tanh(.) = z at init, log|det| = 0. R2, b and Q keep their Glorot init
        and get gradients from the first step on (through R1's)."""
        super().reset_parameters()
        zero_init(self.diag1)
        if self.triangles is not None:
            n, m = self.num_flows, self.num_ortho_vecs
            # output index = flow * (m(m-1)) + which * m(m-1)/2 + entry, which 0 = R1 (flow_params)
            r1_rows = torch.arange(n * m * (m - 1)).view(n, 2, -1)[:, 0].reshape(-1)
            with torch.no_grad():
                self.triangles.weight[r1_rows] = 0.0
                self.triangles.bias[r1_rows] = 0.0

    def flow_params(self, h: Tensor) -> dict[str, tuple[Any, ...]]:
        """Every layer's parameters, each key a tuple over layers: R1, R2: (B, M, M) with their
        diagonals tanh(a1), tanh(a2); "product": R1_ii R2_ii and "one_plus_product":
        1 + R1_ii R2_ii (from log cosh, see the class), (B, M); "b": (B, M); "q": (B, D, M)
        (orthogonal) or "v": per layer a tuple of num_householder (B, D) vectors (householder).

        Built for all layers at once and split with `unbind`: its backward is one stack, where a
        select per layer (`p[:, t]`) writes a zero-filled copy of the whole (B, num_flows, ...)
        tensor each time, and R1, R2 are one index_copy of the diagonal and triangle entries
        into zeros, not an index_put per matrix plus a diag_embed per layer. Those were about
        half of an H-SNF (8 layers) training step's CPU time (torch.profiler: fill_ 24%, add_ 12%,
        index/index_put 10%)."""
        b, n, m, d = h.shape[0], self.num_flows, self.num_ortho_vecs, self.latent_dim
        # None only when num_flows = 0, which never reads the flow parameters.
        assert self.diag1 is not None and self.diag2 is not None and self.bias is not None
        a1, a2 = self.diag1(h).view(b, n, m), self.diag2(h).view(b, n, m)
        d1, d2 = torch.tanh(a1), torch.tanh(a2)
        entries = torch.stack((d1, d2), 2)  # (B, n, 2, M): the diagonals of R1, R2
        if self.triangles is not None:
            entries = torch.cat((entries, self.triangles(h).view(b, n, 2, -1)), -1)
        r = entries.new_zeros(b, n, 2, m * m).index_copy(3, self._entries, entries).view(b, n, 2, m, m)
        r1, r2 = r.unbind(2)
        log_one_plus_product = _log_cosh(a1 + a2) - _log_cosh(a1) - _log_cosh(a2)
        params: dict[str, tuple[Any, ...]] = {
            "r1": r1.unbind(1),
            "r2": r2.unbind(1),
            "product": (d1 * d2).unbind(1),
            "one_plus_product": log_one_plus_product.exp().unbind(1),
            "b": self.bias(h).view(b, n, m).unbind(1),
        }
        # These variants have a q layer whenever num_flows >= 1.
        if self.variant == "orthogonal":
            assert self.q is not None
            raw_q = self.q(h).view(b, n, d, m)
            if self.orthogonalization == "qr":
                params["q"] = torch.linalg.qr(raw_q).Q.unbind(1)
            else:
                params["q"] = bjorck_orthogonalize(raw_q, self.max_orthogonalization_steps).unbind(1)
        elif self.variant == "householder":
            assert self.q is not None
            v = self.q(h).view(b, n, self.num_householder, d)
            params["v"] = tuple(vt.unbind(1) for vt in v.unbind(1))
        return params

    def layer(self, index: int, z: Tensor, params: dict[str, tuple[Any, ...]]) -> tuple[Tensor, Tensor]:
        t = index
        qtz = self._q_transpose(z, params, t)
        pre = torch.einsum("bij,kbj->kbi", params["r2"][t], qtz) + params["b"][t]
        act = torch.tanh(pre)
        out = self._q(torch.einsum("bij,kbj->kbi", params["r1"][t], act), params, t)
        det = params["one_plus_product"][t] - params["product"][t] * act.square()
        log_det = det.clamp_min(torch.finfo(det.dtype).tiny).log().sum(-1)
        return z + out, log_det

    def _q_transpose(self, z: Tensor, params: dict[str, tuple[Any, ...]], t: int) -> Tensor:
        """Q^T z: (K, B, D) -> (K, B, M)."""
        if self.variant == "orthogonal":
            return torch.einsum("bdm,kbd->kbm", params["q"][t], z)
        if self.variant == "householder":  # Q^T = H_n ... H_1
            for v in params["v"][t]:
                z = reflect(z, v)
            return z
        return z.flip(-1) if t % 2 else z

    def _q(self, y: Tensor, params: dict[str, tuple[Any, ...]], t: int) -> Tensor:
        """Q y: (K, B, M) -> (K, B, D)."""
        if self.variant == "orthogonal":
            return torch.einsum("bdm,kbm->kbd", params["q"][t], y)
        if self.variant == "householder":  # Q = H_1 ... H_n
            for v in reversed(params["v"][t]):
                y = reflect(y, v)
            return y
        return y.flip(-1) if t % 2 else y

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, variant={self.variant}, M={self.num_ortho_vecs}"


def _log_cosh(x: Tensor) -> Tensor:
    """log cosh(x) = |x| + log(1 + exp(-2|x|)) - log 2, finite for any finite x."""
    ax = x.abs()
    return ax + F.softplus(-2.0 * ax) - math.log(2.0)


def bjorck_orthogonalize(q: Tensor, max_steps: int = 100) -> Tensor:
    """Orthonormalize the columns of q with the Bjorck-Bowie iteration used by O-SNF.

        Q_0 = q / |q|_F,   Q_{k+1} = Q_k (I + (I - Q_k^T Q_k) / 2)

    Scaling by the Frobenius norm puts every singular value in (0, 1], where the iteration
    converges (quadratically near convergence) to the orthogonal polar factor. Stops when
    max|Q^T Q - I| < 100 eps(dtype) over the whole batch, or after `max_steps` with a
    RuntimeWarning; autograd differentiates through the iterations.

    Shapes: q: (..., D, M) with M <= D -> (..., D, M).

    References:
        An Iterative Algorithm for Computing the Best Estimate of an Orthogonal Matrix.
            Bjorck, Bowie, 1971. SIAM J. Numer. Anal. 8(2).
        Sylvester Normalizing Flows for Variational Inference. van den Berg et al., 2018.
            arXiv:1803.05649.
    """
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"bjorck_orthogonalize: max_steps must be an int >= 1, got {max_steps!r}")
    if q.dim() < 2 or q.shape[-1] > q.shape[-2]:
        raise ValueError(f"bjorck_orthogonalize: q must be (..., D, M) with M <= D, got {tuple(q.shape)}")
    m = q.shape[-1]
    eye = torch.eye(m, dtype=q.dtype, device=q.device)
    tol = 100 * torch.finfo(q.dtype).eps
    q = q / torch.linalg.matrix_norm(q, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
    for _ in range(max_steps):
        residual = eye - q.transpose(-1, -2) @ q
        error = float(residual.detach().abs().amax())
        # A NaN/inf input never converges: hand it on at once for detect_nonfinite to name.
        if error < tol or not math.isfinite(error):
            return q
        q = q + 0.5 * q @ residual
    warnings.warn(
        f"bjorck_orthogonalize: max|Q^T Q - I| = {error:.3g} after {max_steps} steps (tolerance "
        f"{tol:.3g}); the Sylvester log-determinant assumes orthonormal columns: raise "
        "max_orthogonalization_steps or use orthogonalization='qr'",
        RuntimeWarning,
        stacklevel=2,
    )
    return q


@POSTERIORS.register(
    "sylvester_orthogonal",
    "Sylvester flow, O-SNF: Q with M orthonormal columns (Bjorck)",
)
class OrthogonalSylvesterFlow(SylvesterFlow):
    """`SylvesterFlow` with variant='orthogonal' (O-SNF); M = `num_ortho_vecs` (default D),
    Q orthonormalized by `orthogonalization` ("bjorck" as in the paper, or "qr")."""

    def __init__(
        self,
        feature_dim: int,
        latent_dim: int,
        num_flows: int = 4,
        *,
        num_ortho_vecs: int | None = None,
        orthogonalization: Orthogonalization = "bjorck",
        max_orthogonalization_steps: int = 100,
    ) -> None:
        super().__init__(
            feature_dim,
            latent_dim,
            num_flows,
            variant="orthogonal",
            num_ortho_vecs=num_ortho_vecs,
            orthogonalization=orthogonalization,
            max_orthogonalization_steps=max_orthogonalization_steps,
        )


@POSTERIORS.register(
    "sylvester_householder",
    "Sylvester flow, H-SNF: Q a product of Householder reflections",
)
class HouseholderSylvesterFlow(SylvesterFlow):
    """`SylvesterFlow` with variant='householder' (H-SNF), `num_householder` reflections."""

    def __init__(
        self,
        feature_dim: int,
        latent_dim: int,
        num_flows: int = 4,
        *,
        num_householder: int = 4,
    ) -> None:
        super().__init__(
            feature_dim,
            latent_dim,
            num_flows,
            variant="householder",
            num_householder=num_householder,
        )


@POSTERIORS.register(
    "sylvester_triangular",
    "Sylvester flow, T-SNF: Q alternates identity and order reversal",
)
class TriangularSylvesterFlow(SylvesterFlow):
    """`SylvesterFlow` with variant='triangular' (T-SNF)."""

    def __init__(self, feature_dim: int, latent_dim: int, num_flows: int = 4) -> None:
        super().__init__(feature_dim, latent_dim, num_flows, variant="triangular")
