"""Sampling noise for the planners: white, or coloured along the horizon (iCEM).

Coloured noise with exponent beta has power ~ 1 / f**beta across the H time steps of a sequence:
beta = 0 is white noise, beta = 2 (iCEM's choice for manipulation) gives smooth, slowly varying action
sequences that explore further for the same per-step spread. Every time step keeps unit variance, so
the planner's std means the same thing whichever beta is chosen. With beta = 0 this draws exactly
`torch.randn((K, H, D))`, so white-noise planners keep their random streams.
"""

from __future__ import annotations

import math

import torch


def coloured_noise(k: int, horizon: int, dim: int, beta: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """[k, horizon, dim] standard-normal samples, correlated along the horizon with spectrum 1 / f**beta."""
    if beta == 0 or horizon == 1:
        return torch.randn((k, horizon, dim), generator=generator)
    freqs = torch.fft.rfftfreq(horizon)  # [F] cycles per step: 0 .. 0.5
    freqs[0] = freqs[1]  # the constant term gets the lowest frequency's amplitude
    amplitude = freqs ** (-beta / 2)  # [F]
    # Complex Gaussian coefficients with E|c_f|^2 = 1 at every frequency: the constant term (and the
    # Nyquist term of an even-length sequence) is real, every other term splits its power between
    # its real and imaginary parts, and appears twice in the inverse transform (+f and -f).
    edge = torch.zeros(freqs.shape[0], dtype=torch.bool)
    edge[0] = True
    edge[-1] = horizon % 2 == 0
    spectrum = torch.randn((k, dim, freqs.shape[0], 2), generator=generator)  # real and imaginary parts
    spectrum[..., edge, 1] = 0
    spectrum[..., ~edge, :] /= math.sqrt(2)
    coeffs = torch.complex(spectrum[..., 0], spectrum[..., 1]) * amplitude  # [k, dim, F]
    x = torch.fft.irfft(coeffs, n=horizon, norm="ortho")  # [k, dim, H]
    variance = float((torch.where(edge, 1.0, 2.0) * amplitude**2).sum()) / horizon  # per step
    return (x / math.sqrt(variance)).transpose(1, 2).contiguous()  # [k, H, dim]
