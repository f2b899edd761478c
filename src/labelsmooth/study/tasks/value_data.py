"""Data and measures of the ``value`` task (:mod:`labelsmooth.study.tasks.value`): the synthetic regression
problem with Student-t target noise, discounted CartPole returns from ``gymnasium`` (extra
``labelsmooth[rl]``), and the CRPS and central-interval coverage of a predicted histogram.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from labelsmooth import Support

if TYPE_CHECKING:
    from labelsmooth.study.tasks.value import ValueSection

__all__ = ["cartpole_env", "cartpole_returns", "crps_and_coverage", "make_data"]


# --- data ---


def _clean_function(x: np.ndarray) -> np.ndarray:
    return np.sin(3 * x[:, 0]) * np.cos(2 * x[:, 1]) + 0.5 * x.mean(1)


def _controller(states: np.ndarray) -> np.ndarray:
    """A fixed linear controller on (x, x_dot, theta, theta_dot), columns; push right when it is positive."""
    x, x_dot, theta, theta_dot = states
    return (0.05 * x + 0.2 * x_dot + 3.0 * theta + 0.6 * theta_dot > 0).astype(np.int64)


def cartpole_env() -> Any:
    """gymnasium's ``CartPoleVectorEnv``; ImportError naming the extra when gymnasium is missing."""
    try:
        from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
    except ImportError as exc:
        raise ImportError(
            'value.data = "cartpole" needs gymnasium, which is not installed: pip install "labelsmooth[rl]"'
        ) from exc
    return CartPoleVectorEnv


def cartpole_returns(
    states: np.ndarray, section: ValueSection, rng: np.random.Generator, *, repeats: int = 1
) -> np.ndarray:
    """Discounted return ``sum_t gamma^t r_t`` (t < horizon) of one rollout per state and repeat.

    ``states`` is ``(n, 4)``; each is copied ``repeats`` times into one ``gymnasium`` CartPole vector
    environment (numpy, pure physics) and rolled out under the controller with ``epsilon``-random
    actions. Returns ``(n, repeats)``. Raises ImportError naming the extra when gymnasium is missing.
    """
    CartPoleVectorEnv = cartpole_env()
    n = states.shape[0] * repeats
    env = CartPoleVectorEnv(num_envs=n, max_episode_steps=section.horizon + 1)
    env.reset(seed=int(rng.integers(2**31)))
    obs: np.ndarray = np.repeat(states, repeats, axis=0).astype(np.float64)
    env.state = obs.T.copy()  # type: ignore[assignment]  # every rollout starts from its state
    alive = np.ones(n, dtype=bool)
    ret = np.zeros(n)
    for t in range(section.horizon):
        action = _controller(obs.T)
        explore = rng.random(n) < section.epsilon
        action = np.where(explore, rng.integers(0, 2, n), action).astype(np.int64)
        obs, reward, terminated, _, _ = env.step(action)
        ret += np.where(alive, section.gamma**t * reward, 0.0)
        alive &= ~terminated
        if not alive.any():
            break
    env.close()
    return ret.reshape(states.shape[0], repeats)


_BOX = np.array([1.5, 1.5, 0.2, 1.5])
"""Half-widths of the CartPole start-state box (x, x_dot, theta, theta_dot); theta fails at 0.21."""


def make_data(section: ValueSection, seed: int) -> dict[str, torch.Tensor]:
    """``x_train, y_train`` (noisy), ``x_test, clean_test`` (clean) and ``y_test`` (noisy), float32."""
    rng = np.random.default_rng([seed, 12])
    if section.data == "synthetic":
        x = rng.uniform(-1, 1, size=(section.n_train + section.n_test, section.dim))
        clean = _clean_function(x)
        noisy = clean + section.noise_scale * rng.standard_t(section.noise_df, size=clean.shape)
        inputs = x
    else:
        s = rng.uniform(-1, 1, size=(section.n_train + section.n_test, 4)) * _BOX
        noisy = cartpole_returns(s, section, rng)[:, 0]
        clean = np.concatenate(
            [
                noisy[: section.n_train],
                cartpole_returns(s[section.n_train :], section, rng, repeats=section.rollouts).mean(1),
            ]
        )
        inputs = s / _BOX
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    n = section.n_train
    return {
        "x_train": f(inputs[:n]),
        "y_train": f(noisy[:n]),
        "x_test": f(inputs[n:]),
        "y_test": f(noisy[n:]),
        "clean_test": f(clean[n:]),
    }


# --- measures ---


def crps_and_coverage(probs: torch.Tensor, y: torch.Tensor, support: Support) -> tuple[float, float]:
    """CRPS of the histograms and the coverage of their central 80% interval, averaged over rows.

    CRPS treats the mass as atoms at the bin centres, ``sum_i p_i |c_i - y| - 1/2 sum_ij p_i p_j |c_i - c_j|``
    (Gneiting and Raftery 2007). The interval ``[q_0.1, q_0.9]`` treats it as uniform within each bin (the
    CDF is linear between edges), and coverage is the fraction of ``y`` inside it: 0.8 when calibrated.
    """
    p = probs.double()
    yd = y.double()
    c = support.centres
    first = (p * (c - yd.unsqueeze(-1)).abs()).sum(-1)
    second = 0.5 * ((p @ (c[:, None] - c[None, :]).abs()) * p).sum(-1)
    cdf = torch.cat([torch.zeros_like(p[:, :1]), p.cumsum(-1)], -1)  # at the edges, (N, B + 1)

    def quantile(q: float) -> torch.Tensor:
        i = ((cdf[:, 1:] < q).sum(-1)).clamp(max=support.bins - 1)  # the bin where the CDF crosses q
        below = cdf.gather(1, i[:, None])[:, 0]
        mass = p.gather(1, i[:, None])[:, 0].clamp_min(1e-300)
        frac = ((q - below) / mass).clamp(0, 1)
        return support.edges[i] + frac * support.widths[i]

    inside = (yd >= quantile(0.1)) & (yd <= quantile(0.9))
    return float((first - second).mean()), float(inside.double().mean())
