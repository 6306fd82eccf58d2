"""SIGReg (LeJEPA, arXiv 2511.08544): push a batch of embeddings towards an isotropic Gaussian.

Sketched: M random unit directions u_m project the N embeddings [N, D] to M one-dimensional samples
x_{n,m} = <z_n, u_m>. Each is compared with N(0, 1) by the Epps-Pulley statistic, the weighted squared
distance between the sample's empirical characteristic function and the Gaussian's:

    EP_m = N * integral over t of | mean_n exp(i t x_{n,m}) - exp(-t^2 / 2) |^2 * exp(-t^2 / 2) dt

The integrand is even in t, so it is integrated over [0, t_max] with the trapezoid rule and doubled.
SIGReg is the mean of EP_m over the directions. Under the null (Gaussian samples) EP_m stays O(1)
whatever N; a collapsed, shifted or anisotropic batch gives O(N). It is differentiable, needs no
EMA, stop-gradient or negative pairs, and costs O(N M K) for K quadrature knots.
"""

from __future__ import annotations

import torch

KNOTS = 17  # quadrature points on [0, t_max]
T_MAX = 3.0
NUM_DIRECTIONS = 256


def random_directions(dim: int, num: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """[dim, num] unit columns, uniform on the sphere."""
    u = torch.randn(dim, num, generator=generator, device=device)
    return u / u.norm(dim=0, keepdim=True)


def epps_pulley(x: torch.Tensor, knots: int = KNOTS, t_max: float = T_MAX) -> torch.Tensor:
    """x [N, M]: M one-dimensional samples of size N -> [M] Epps-Pulley statistics against N(0, 1)."""
    t = torch.linspace(0.0, t_max, knots, device=x.device, dtype=torch.float32)  # [K]
    w = torch.full((knots,), t_max / (knots - 1), device=x.device)  # trapezoid weights ...
    w[0] = w[-1] = w[0] / 2
    gauss = torch.exp(-0.5 * t**2)  # [K]: the N(0, 1) characteristic function, also the weight
    tx = x.float().unsqueeze(-1) * t  # [N, M, K]
    re = torch.cos(tx).mean(dim=0) - gauss  # [M, K]
    im = torch.sin(tx).mean(dim=0)  # [M, K]
    return x.shape[0] * ((re**2 + im**2) @ (2.0 * w * gauss))  # [M] (x2: the integral over t < 0)


def sigreg(
    z: torch.Tensor, num_directions: int = NUM_DIRECTIONS, generator: torch.Generator | None = None,
    directions: torch.Tensor | None = None,
) -> torch.Tensor:
    """z [..., D] (all leading dims are samples) -> scalar SIGReg statistic (mean Epps-Pulley over
    random directions; pass ``directions`` [D, M] to fix them)."""
    z = z.reshape(-1, z.shape[-1])  # [N, D]
    if directions is None:
        directions = random_directions(z.shape[-1], num_directions, generator).to(z.device)
    return epps_pulley(z.float() @ directions.float()).mean()


@torch.no_grad()
def collapse_diagnostics(z: torch.Tensor) -> dict[str, float]:
    """z [..., D] -> {'std_min', 'std_mean' (per-dimension std over the samples), 'effective_rank'
    (exp of the entropy of the normalised covariance eigenvalues: D for isotropic, 1 for a line)}."""
    z = z.reshape(-1, z.shape[-1]).float()
    std = z.std(dim=0)
    zc = z - z.mean(dim=0)
    eig = torch.linalg.eigvalsh(zc.T @ zc / max(1, z.shape[0] - 1)).clamp(min=0)
    p = eig / eig.sum().clamp(min=1e-12)
    entropy = -(p * p.clamp(min=1e-12).log()).sum()
    return {"std_min": float(std.min()), "std_mean": float(std.mean()), "effective_rank": float(entropy.exp())}
