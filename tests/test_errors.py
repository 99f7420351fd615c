import json
from pathlib import Path

import pytest

from prefrl.config import TrainConfig
from prefrl.errors import PrefrlError
from prefrl.interfaces.cli import main
from prefrl.loop import train


def test_unknown_env_id_names_the_fix_and_writes_nothing(tmp_path):
    with pytest.raises(PrefrlError, match=r"unknown env id 'HalfCheeta-v5'\. Did you mean HalfCheetah-v5"):
        train(TrainConfig(env="HalfCheeta-v5", out=tmp_path / "run"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, "--steps must be positive"),
    ({"steps": -5}, "--steps must be positive"),
    ({"labels": 0}, "--labels must be positive"),
])
def test_non_positive_budget_is_refused(kwargs, match):
    with pytest.raises(PrefrlError, match=match):
        TrainConfig(env="prefrl/PointReach-v0", **kwargs)


def test_run_directory_of_another_env_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(TrainConfig(env="Hopper-v5", out=run).to_json())
    with pytest.raises(PrefrlError, match="belongs to env 'Hopper-v5', not 'prefrl/PointReach-v0'"):
        train(TrainConfig(env="prefrl/PointReach-v0", out=run, resume=True))
    with pytest.raises(PrefrlError, match="already holds a run of 'Hopper-v5': add --resume"):
        train(TrainConfig(out=run))


@pytest.mark.parametrize("argv, match", [
    (["train", "--env", "Nope-v1"], "unknown env id 'Nope-v1'"),
    (["train", "--env", "prefrl/PointReach-v0", "--labels", "-1"], "--labels must be positive"),
    (["train", "--env", "no_such_pkg.mod:make"], "cannot import module 'no_such_pkg.mod'"),
    (["train", "--env", "tests.factories:not_an_env"], "returned int, not a gymnasium.Env"),
    (["train", "--env", "tests.factories:needs_an_argument"], "give its other parameters defaults"),
    (["train", "--env", "tests.factories:nothing_here"], "has no callable 'nothing_here'"),
    (["export", "/nonexistent/run"], "no preference store"),
    (["train", "--env", "prefrl/PointReach-v0", "--reward-from", "/nonexistent/run"],
     "no run with a reward model there"),
    (["train", "--reward-from", "/nonexistent/run", "--reward", "true"], "drop --reward true, or drop --reward-from"),
    (["train", "--reward", "true", "--retrain-steps", "1000"], "drop --retrain-steps, or drop --reward true"),
    (["train", "--retrain-steps", "-5"], "--retrain-steps"),
])
def test_cli_prints_one_clear_line_and_exits_2(argv, match, capsys, tmp_path):
    if argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prefrl: error:") and match in err and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_config_round_trips_through_json(tmp_path):
    cfg = TrainConfig(env="prefrl/PointReach-v0", steps=123, out=tmp_path)
    again = TrainConfig.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(cfg.to_json())["queries"]["clip_length"] is None  # set from the env when the run is prepared
    assert json.loads(cfg.to_json())["reward_model"]["background"] is True


def test_a_run_saved_before_the_squared_actions_resumes_with_the_reward_model_it_had(tmp_path):
    """config.json files written before `action_squares` existed ran without them: their reward model's weights
    have the narrower input, so they load as they were saved, and a new run takes today's default."""
    raw = json.loads(TrainConfig(env="prefrl/PointReach-v0", out=tmp_path).to_json())
    assert raw["reward_model"].pop("action_squares") is True
    assert TrainConfig.from_json(json.dumps(raw)).reward_model.action_squares is False
    del raw["reward_model"]
    assert TrainConfig.from_json(json.dumps(raw)).reward_model.action_squares is False


def test_reward_model_of_another_env_is_refused(tmp_path):
    import gymnasium as gym
    import numpy as np

    from prefrl.config import RewardModelConfig
    from prefrl.core.reward.factory import make_reward_model

    source = tmp_path / "hopper"
    (source / "reward_model").mkdir(parents=True)
    (source / "config.json").write_text(TrainConfig(env="Hopper-v5", out=source).to_json())
    hopper_obs, hopper_act = gym.spaces.Box(-np.inf, np.inf, (11,)), gym.spaces.Box(-1, 1, (3,))
    make_reward_model(hopper_obs, hopper_act, RewardModelConfig()).save(source / "reward_model" / "model.pt")
    with pytest.raises(PrefrlError, match="learned on 'Hopper-v5'.*train on --env Hopper-v5"):
        train(TrainConfig(env="prefrl/PointReach-v0", reward_from=source, out=tmp_path / "run"))


def test_reward_from_a_run_that_trained_on_another_follows_it_and_is_stored_absolute(tmp_path, monkeypatch):
    """A run trained --reward-from another saves no model of its own: --reward-from it reads the model it trained
    on; a chain that comes back on itself gets the one error; a relative --reward-from is stored absolute."""
    import gymnasium as gym
    import numpy as np
    import torch

    from prefrl.checkpoint import load_reward_model
    from prefrl.config import RewardModelConfig
    from prefrl.core.reward.factory import make_reward_model
    from prefrl.run_dir import RunDir

    obs, act = gym.spaces.Box(-np.inf, np.inf, (4,)), gym.spaces.Box(-1, 1, (2,))
    learned, fixed, loop = tmp_path / "learned", tmp_path / "fixed", tmp_path / "loop"
    (learned / "reward_model").mkdir(parents=True)
    (learned / "config.json").write_text(TrainConfig(env="prefrl/PointReach-v0", out=learned).to_json())
    model = make_reward_model(obs, act, RewardModelConfig())
    model.is_fitted.fill_(True)
    model.save(learned / "reward_model" / "model.pt")
    fixed.mkdir()
    (fixed / "config.json").write_text(
        TrainConfig(env="prefrl/PointReach-v0", reward_from=learned, out=fixed).to_json())
    followed = load_reward_model(fixed, obs, act)
    batch = np.ones((3, 4), np.float32), np.zeros((3, 2), np.float32)
    assert np.allclose(followed.reward(*batch), model.reward(*batch))
    assert all(torch.equal(a, b) for a, b in zip(followed.state_dict().values(), model.state_dict().values()))
    loop.mkdir()
    (loop / "config.json").write_text(TrainConfig(env="prefrl/PointReach-v0", reward_from=loop, out=loop).to_json())
    with pytest.raises(PrefrlError, match="no run with a reward model there"):
        load_reward_model(loop, obs, act)
    monkeypatch.chdir(tmp_path)
    _, cfg = RunDir.check(TrainConfig(env="prefrl/PointReach-v0", reward_from=Path("fixed"), out=tmp_path / "new"))
    assert cfg.reward_from == tmp_path / "fixed"
