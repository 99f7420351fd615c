"""What one reward-model fit costs, and what a run's fits cost, for each choice made to cut it (side by side).

    python scripts/benchmark_fit_cost.py --out docs/benchmark-results-fit-cost.jsonl

1. One gradient step of the Atari CNN ensemble (3 members, 64 pairs, 84x84x4 uint8 frames, 6 actions, one thread):
   the grouped convolution over member-stacked channels reading every step of a clip (the layout before), one
   channels-last convolution per member, and that reading `image_steps` of a clip's steps.
2. Gradient steps a run's fits take under its label schedule (the loop's rounds: an initial share, then a round
   after every chunk), refitting on every label each time (replay None, before) against new labels plus a bounded
   replay (the default), and their seconds at the per-step costs of 1.
3. The agent's per-step reward from the MLP ensemble (Hopper's sizes): through torch, and through numpy.
4. A rollout's learned rewards (Hopper: 512 steps of 4 env copies; Pong: 128 steps of 8 copies), computed step by
   step (`--reward-per-step`, before) against in calls of 256 steps at the rollout's end (the default).
5. The Atari CNN's convolutions in float32 and in bfloat16 (`--reward-model.precision`): a gradient step as in 1
   (8 of 25 steps) and a Pong rollout's rewards as in 4 (`--only-precision` measures only this).

Prints a markdown table and appends one JSON row per measurement to --out.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import tyro

from prefrl.config import RewardModelConfig
from prefrl.core.reward.cnn import CnnBody
from prefrl.core.reward.factory import make_reward_model
from prefrl.core.reward.model import RewardEnsemble
from prefrl.core.reward.trainer import gradient_steps
from prefrl.core.schedule import LabelSchedule
from prefrl.errors import PrefrlError, exit_status
from prefrl.interfaces.benchmark import machine


@dataclass(frozen=True)
class Args:
    out: Path | None = None
    """Append the rows to this JSONL file."""
    repeats: int = 3
    """Timed repetitions of each step (the median is kept)."""
    labels: int = 1000
    """The run's label budget (the Pong benchmark's)."""
    steps: int = 500_000
    """The run's agent steps."""
    only_rollout: bool = False
    """Measure only 4 (the rollout's rewards)."""
    only_precision: bool = False
    """Measure only 5 (float32 against bfloat16)."""


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


_NCHW: dict[int, torch.nn.Module] = {}


def _nchw_convs(body: CnnBody) -> torch.nn.Module:
    """The body's grouped convolutions in plain NCHW memory, sharing their weights' values (a copy, made once)."""
    if id(body) not in _NCHW:
        convs = copy.deepcopy(body.convs)
        for m in convs.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.data = m.weight.data.contiguous()
        _NCHW[id(body)] = convs
    return _NCHW[id(body)]


def _grouped_step(model: RewardEnsemble, feats: torch.Tensor) -> torch.Tensor:
    """The layout before: every member's images stacked along channels, one grouped convolution per layer, NCHW."""
    body = model.body
    assert isinstance(body, CnnBody)
    e, n = feats.shape[:2]
    img = feats[..., :body.obs_dim].float().div(255).reshape(e, n, *body.obs_shape).permute(0, 1, 4, 2, 3)
    img = img.transpose(0, 1).reshape(n, e * body.image[0], *body.image[1:]).contiguous()
    h = _nchw_convs(body)(img).reshape(n, e, -1).transpose(0, 1)
    return body.dense(torch.cat([h, feats[..., body.obs_dim:].float()], dim=-1)).sum()


def cnn_step_costs(repeats: int) -> dict[str, float]:
    """Seconds of one gradient step (forward and backward, both clips of 64 pairs, 3 members)."""
    obs_space = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
    model = make_reward_model(obs_space, gym.spaces.Discrete(6), RewardModelConfig())
    rng = np.random.default_rng(0)
    frames = 25
    feats = model.step_features(rng.integers(0, 256, (3, 128, frames, 84, 84, 4), dtype=np.uint8),
                                rng.integers(0, 6, (3, 128, frames)))  # (E, 2 clips x 64 pairs, T, D)
    absorbing = torch.zeros(3, 128)

    def grouped() -> None:
        model.zero_grad()
        _grouped_step(model, feats.reshape(3, -1, feats.shape[-1])).backward()

    def per_member(k: int) -> Callable[[], None]:
        pos = torch.as_tensor(np.sort(rng.choice(frames, k, replace=False)))

        def step() -> None:
            model.zero_grad()
            part = feats if k == frames else feats[:, :, pos]
            model.member_returns(part, absorbing, steps=None if k == frames else (pos, frames)).sum().backward()

        return step

    return {"grouped NCHW, 25 of 25 steps (before)": _median_seconds(grouped, repeats),
            "per member channels-last, 25 of 25 steps": _median_seconds(per_member(25), repeats),
            "per member channels-last, 8 of 25 steps (default)": _median_seconds(per_member(8), repeats)}


def schedule_steps(cfg: RewardModelConfig, labels: int, steps: int, rounds: int = 30, initial: float = 0.25,
                   decay: float = 0.25) -> int:
    """Gradient steps of every fit of a run (as `RewardTrainer.update` counts them) whose labels arrive as the
    loop's schedule asks them: `initial` of them first, then one round per chunk of steps/`rounds`."""
    horizon = steps - steps // rounds
    schedule = LabelSchedule(labels, round(initial * labels), horizon, decay * horizon)
    train_share = 1 - cfg.val_fraction
    total, seen = 0, 0
    for k in range(rounds):
        due = math.floor(schedule.due(k * (steps // rounds)) * train_share)
        new = due - seen
        if new <= 0:
            continue
        pool = due if cfg.image_replay is None else new + min(seen, cfg.image_replay)
        total += gradient_steps(cfg, pool)
        seen = due
    return total


def mlp_reward_costs(repeats: int) -> dict[str, float]:
    """Seconds of the agent's reward for one step of one env copy (Hopper's sizes), averaged over 2,000 calls."""
    env = gym.make("Hopper-v5")
    model = make_reward_model(env.observation_space, env.action_space, RewardModelConfig())
    model.begin(torch.randn(4, 25, 14))
    obs, acts = np.random.randn(1, 11).astype(np.float32), np.random.randn(1, 3).astype(np.float32)

    def through_torch() -> None:
        for _ in range(2000):
            with torch.no_grad():
                model.normalised(model.step_features(obs, acts)).mean(0).numpy()

    def through_numpy() -> None:
        for _ in range(2000):
            model.reward(obs, acts)

    return {"torch": _median_seconds(through_torch, repeats) / 2000,
            "numpy (default)": _median_seconds(through_numpy, repeats) / 2000}


def rollout_reward_costs(repeats: int) -> dict[str, float]:
    """Seconds of a rollout's learned rewards, step by step and in the loop's batched calls (`wrapper._BATCH`)."""
    from prefrl.gym.wrapper import _BATCH

    rng = np.random.default_rng(0)
    hopper = gym.make("Hopper-v5")
    cases = {"Hopper MLP, 512 steps x 4 copies": (hopper.observation_space, hopper.action_space, 512, 4),
             "Pong CNN, 128 steps x 8 copies": (gym.spaces.Box(0, 255, (84, 84, 4), np.uint8), gym.spaces.Discrete(6),
                                                128, 8)}
    out = {}
    for name, (obs_space, act_space, steps, copies) in cases.items():
        model = make_reward_model(obs_space, act_space, RewardModelConfig())
        model.is_fitted.fill_(True)
        shape = (steps * copies, *(obs_space.shape or ()))
        obs = rng.integers(0, 256, shape).astype(obs_space.dtype or np.float32)
        acts = np.stack([act_space.sample() for _ in range(steps * copies)])

        def calls(size: int, model: RewardEnsemble = model, obs: np.ndarray = obs,
                  acts: np.ndarray = acts) -> Callable[[], object]:
            return lambda: [model.reward(obs[i:i + size], acts[i:i + size]) for i in range(0, len(obs), size)]

        out[f"{name}, step by step (before)"] = _median_seconds(calls(copies), repeats)
        out[f"{name}, calls of {_BATCH} steps (default)"] = _median_seconds(calls(_BATCH), repeats)
    return out


def precision_costs(repeats: int) -> dict[str, float]:
    """Seconds of a CNN gradient step (8 of 25 steps, as in `cnn_step_costs`) and of a Pong rollout's rewards (calls
    of `wrapper._BATCH`), with the convolutions in float32 and in bfloat16, on the same weights and inputs."""
    from prefrl.gym.wrapper import _BATCH

    rng = np.random.default_rng(0)
    obs_space, act_space = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8), gym.spaces.Discrete(6)
    models = {p: make_reward_model(obs_space, act_space, RewardModelConfig(precision=p))
              for p in ("float32", "bfloat16")}
    models["bfloat16"].load_state_dict(models["float32"].state_dict())
    feats = models["float32"].step_features(rng.integers(0, 256, (3, 128, 8, 84, 84, 4), dtype=np.uint8),
                                            rng.integers(0, 6, (3, 128, 8)))
    absorbing, pos = torch.zeros(3, 128), torch.arange(0, 24, 3)
    obs = rng.integers(0, 256, (128 * 8, 84, 84, 4), dtype=np.uint8)
    acts = rng.integers(0, 6, 128 * 8)
    out = {}
    for precision, model in models.items():
        model.is_fitted.fill_(True)

        def step(model: RewardEnsemble = model) -> None:
            model.zero_grad()
            model.member_returns(feats, absorbing, steps=(pos, 25)).sum().backward()

        def rollout(model: RewardEnsemble = model) -> object:
            return [model.reward(obs[i:i + _BATCH], acts[i:i + _BATCH]) for i in range(0, len(obs), _BATCH)]

        out[f"gradient step, 8 of 25 steps, {precision}"] = _median_seconds(step, repeats)
        out[f"Pong rollout's rewards, 128 steps x 8 copies, {precision}"] = _median_seconds(rollout, repeats)
    return out


def _precision_rows(args: Args, rows: list[dict]) -> None:
    costs = precision_costs(args.repeats)
    print("\n| the Atari CNN's convolutions | seconds | float32 / bfloat16 |\n|---|---|---|")
    for name, sec in costs.items():
        base = costs[name.replace("bfloat16", "float32")]
        print(f"| {name} | {sec:.3f} | {base / sec:.2f} |")
        rows.append({"measure": "cnn_precision_s", "variant": name, "seconds": round(sec, 4)})


def main(args: Args) -> None:
    if args.repeats < 1:
        raise PrefrlError(f"--repeats {args.repeats}: time each step at least once (--repeats 1 or more)")
    torch.set_num_threads(1)
    rows: list[dict] = []
    if args.only_rollout or args.only_precision:
        (_rollout_rows if args.only_rollout else _precision_rows)(args, rows)
        _write(args, rows)
        return
    step_cost = cnn_step_costs(args.repeats)
    base = step_cost["grouped NCHW, 25 of 25 steps (before)"]
    print("| CNN gradient step | seconds | vs before |\n|---|---|---|")
    for name, sec in step_cost.items():
        print(f"| {name} | {sec:.2f} | {base / sec:.1f}x faster |")
        rows.append({"measure": "cnn_step_s", "variant": name, "seconds": round(sec, 3)})
    before = schedule_steps(RewardModelConfig(image_replay=None), args.labels, args.steps)
    after = schedule_steps(RewardModelConfig(), args.labels, args.steps)
    default_step = step_cost["per member channels-last, 8 of 25 steps (default)"]
    print(f"\n| a run's fits ({args.labels} labels, {args.steps:,} steps, 30 rounds) | gradient steps | CNN seconds |"
          "\n|---|---|---|")
    for name, n, sec in (("every label each fit, grouped, 25 steps (before)", before, before * base),
                         ("new labels + replay 64, per member, 8 steps (default)", after, after * default_step)):
        print(f"| {name} | {n:,} | {sec:,.0f} |")
        rows.append({"measure": "run_fit", "variant": name, "gradient_steps": n, "cnn_seconds": round(sec)})
    reward_cost = mlp_reward_costs(args.repeats)
    print("\n| agent's reward, one step (Hopper MLP ensemble) | microseconds |\n|---|---|")
    for name, sec in reward_cost.items():
        print(f"| {name} | {sec * 1e6:.0f} |")
        rows.append({"measure": "mlp_reward_us", "variant": name, "microseconds": round(sec * 1e6, 1)})
    _rollout_rows(args, rows)
    _precision_rows(args, rows)
    _write(args, rows)


def _rollout_rows(args: Args, rows: list[dict]) -> None:
    costs = rollout_reward_costs(args.repeats)
    print("\n| a rollout's learned rewards | ms |\n|---|---|")
    for name, sec in costs.items():
        print(f"| {name} | {sec * 1e3:.0f} |")
        rows.append({"measure": "rollout_reward_ms", "variant": name, "milliseconds": round(sec * 1e3, 1)})


def _write(args: Args, rows: list[dict]) -> None:
    if args.out is not None:
        stamp, where = time.strftime("%Y%m%d-%H%M%S"), machine()
        with args.out.open("a") as f:
            f.writelines(json.dumps({**r, "batch": stamp, "machine": where}) + "\n" for r in rows)


if __name__ == "__main__":
    sys.exit(exit_status(lambda: main(tyro.cli(Args, description=__doc__))))
