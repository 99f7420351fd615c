import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.config import RewardModelConfig
from prefrl.core.data import Clip
from prefrl.core.reward.factory import make_reward_model
from prefrl.core.reward.model import LIVE_FLOOR_QUANTILE, NUMPY_ROWS, RewardEnsemble
from prefrl.core.reward.trainer import PreferenceData, RewardTrainer, preference_loss
from prefrl.session import received_absorbing
from tests.factories import preference_data

OBS, ACT, T = 6, 2, 10


def _model(cfg: RewardModelConfig) -> RewardEnsemble:
    return make_reward_model(gym.spaces.Box(-np.inf, np.inf, (OBS,)), gym.spaces.Box(-1, 1, (ACT,)), cfg)


def _normalise(model: RewardEnsemble, obs: np.ndarray, acts: np.ndarray) -> None:
    model.normalise_outputs([Clip(obs=obs, acts=acts, true_rewards=np.zeros(len(obs)))])


def _synthetic_pairs(model: RewardEnsemble, rng: np.random.Generator, n: int) -> PreferenceData:
    """Pairs of random clips labelled by a hidden reward that is nonlinear in (obs, act)."""
    w = np.array([1.0, -2.0, 0.5, 0.0, 0.0, 1.5])

    def clip() -> tuple[np.ndarray, np.ndarray, float, int]:
        o, a = rng.normal(size=(T, OBS)), rng.uniform(-1, 1, size=(T, ACT))
        return o, a, float((o @ w - np.abs(a).sum(1) + 0.5 * o[:, 3] ** 2).sum()), 0

    return preference_data(model, clip, n)


def test_reward_model_learns_a_known_preference(rng):
    torch.manual_seed(0)
    cfg = RewardModelConfig(epochs=60, max_updates=2000)
    model = _model(cfg)
    data = _synthetic_pairs(model, rng, 1000)
    trainer = RewardTrainer(model, cfg, rng)
    before = trainer.evaluate(data, data.is_val)[1]
    for _ in range(3):
        stats = trainer.update(data)
    assert stats.val_accuracy >= 0.9, stats
    assert stats.val_accuracy > before + 0.2


def test_l2_rises_while_the_model_overfits_and_falls_while_it_underfits(rng):
    torch.manual_seed(0)
    cfg = RewardModelConfig(epochs=60)
    # 60 labels given at random: the members memorise the training pairs, and validation loss runs away from
    # training loss, so the L2 weight is raised.
    model = _model(cfg)
    coin_flips = dataclasses.replace(_synthetic_pairs(model, rng, 60),
                                     target=torch.tensor(rng.integers(0, 2, 60), dtype=torch.float32))
    trainer = RewardTrainer(model, cfg, rng)
    steps = [trainer.update(coin_flips) for _ in range(4)]
    assert steps[-1].val_loss > 1.5 * steps[-1].train_loss, steps[-1]
    assert steps[-1].l2 >= 2 * cfg.l2, [s.l2 for s in steps]
    # A weight so heavy that the members cannot fit 200 consistent labels: the two losses stay level, and it falls.
    heavy = dataclasses.replace(cfg, l2=1.0)
    model = _model(heavy)
    stats = RewardTrainer(model, heavy, rng).update(_synthetic_pairs(model, rng, 200))
    assert stats.val_loss < 1.1 * stats.train_loss and stats.l2 == 0.5, stats


def test_bootstrap_samples_make_the_members_disagree_where_labels_are_few(rng):
    """With 40 labels, members trained on their own bootstrap samples disagree about new pairs two to four times as
    much as members trained on all the labels (variance of their preference probabilities over 6 seeds); that
    disagreement is what `--selection disagreement` asks about."""
    spread = {}
    for bootstrap in (True, False):
        torch.manual_seed(0)
        cfg = RewardModelConfig(members=5, epochs=200, bootstrap=bootstrap)
        model = _model(cfg)
        pairs_rng = np.random.default_rng(0)
        RewardTrainer(model, cfg, np.random.default_rng(50)).update(_synthetic_pairs(model, pairs_rng, 40))
        new = _synthetic_pairs(model, pairs_rng, 200)
        with torch.no_grad():
            shared = model.body.shared
            p = torch.sigmoid(shared(new.left).sum(-1) - shared(new.right).sum(-1))  # (members, pairs)
        spread[bootstrap] = float(p.var(0).mean())
    assert spread[True] > 1.5 * spread[False], spread


def test_members_evaluated_together_match_one_by_one(rng):
    model = _model(RewardModelConfig(members=4))
    x = model.step_features(rng.normal(size=(7, OBS)), rng.normal(size=(7, ACT)))
    together = model.body.shared(x)
    for e in range(4):
        h = (x - model.body.in_mean) / model.body.in_std
        for layer in model.body.net:
            h = h @ layer.weight[e] + layer.bias[e] if hasattr(layer, "weight") else layer(h)
        torch.testing.assert_close(together[e], h.squeeze(-1))


def test_output_normalisation_gives_zero_mean_unit_std(rng):
    model = _model(RewardModelConfig())
    obs, acts = rng.normal(size=(500, OBS)) * 5 + 3, rng.uniform(-1, 1, size=(500, ACT))
    _normalise(model, obs, acts)
    per_member = model.normalised(model.step_features(obs, acts))
    torch.testing.assert_close(per_member.mean(1), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_member.std(1), torch.ones(3), atol=1e-3, rtol=0)
    assert model.reward(obs[:4], acts[:4]).shape == (4,)


def test_discrete_actions_are_one_hot(rng):
    model = make_reward_model(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(4), RewardModelConfig())
    f = model.step_features(rng.normal(size=(5, 3)), np.array([0, 1, 2, 3, 1]))
    assert f.shape == (5, 7)
    torch.testing.assert_close(f[:, 3:].sum(1), torch.ones(5))


def test_loss_models_a_teacher_who_sometimes_answers_at_random():
    big = torch.tensor(100.0)
    # even a hugely confident wrong prediction costs a bounded loss: p(wrong) >= 5%
    loss = preference_loss(big, -big, torch.tensor(0.0), random_answer=0.1)
    assert torch.isclose(loss, -torch.log(torch.tensor(0.05)), atol=1e-4)
    equal = preference_loss(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.5), 0.1)
    assert torch.isclose(equal, torch.log(torch.tensor(2.0)))


def _absorbing_pairs(model: RewardEnsemble, rng: np.random.Generator, n: int, alive: float) -> PreferenceData:
    """Pairs of clips worth `alive` + obs[0] per real step and 0 per absorbing step, labelled by their returns."""

    def clip() -> tuple[np.ndarray, np.ndarray, float, int]:
        o, a = rng.normal(size=(T, OBS)), rng.uniform(-1, 1, size=(T, ACT))
        absorbing = int(rng.integers(0, T)) if rng.random() < 0.5 else 0
        return o, a, float((alive + 0.3 * o[:T - absorbing, 0]).sum()), absorbing

    return preference_data(model, clip, n)


def test_teacher_answers_decide_whether_terminating_is_good_or_bad(rng):
    """Where living pays, the absorbing state is learned to be worse than a typical step; where every step
    costs, better. Either way clips cut short by termination are ranked correctly."""
    for alive, sign in ((1.0, -1), (-1.0, 1)):
        torch.manual_seed(0)
        cfg = RewardModelConfig(epochs=40, max_updates=600)
        model = _model(cfg)
        data = _absorbing_pairs(model, rng, 600, alive)
        trainer = RewardTrainer(model, cfg, rng)
        for _ in range(2):
            stats = trainer.update(data)
        assert stats.val_accuracy >= 0.85, (alive, stats)
        obs, acts = rng.normal(size=(500, OBS)), rng.uniform(-1, 1, size=(500, ACT))
        _normalise(model, obs, acts)
        absorbing = model.absorbing_reward()
        assert np.sign(absorbing) == sign and abs(absorbing) > 1, (alive, absorbing)
        # what the agent receives is capped at the 1st percentile of the live steps' rewards (--absorbing-cap)
        floor = np.quantile(model.reward(obs, acts), LIVE_FLOOR_QUANTILE)
        assert model.live_floor() == pytest.approx(floor, abs=1e-4)
        assert received_absorbing(model, capped=False) == absorbing
        if alive > 0:  # ending already costs: the learned reward stands
            assert absorbing < floor and received_absorbing(model, capped=True) == absorbing
        else:  # ending would pay: the agent gets no more than nearly the worst live step
            assert absorbing > floor and received_absorbing(model, capped=True) == pytest.approx(floor, abs=1e-4)


def test_a_model_saved_before_the_live_floor_loads_without_a_cap(tmp_path, rng):
    model = _model(RewardModelConfig())
    model.begin(model.step_features(rng.normal(size=(20, OBS)), rng.uniform(-1, 1, size=(20, ACT))))
    state = {k: v for k, v in model.state_dict().items() if k != "floor"}
    torch.save(state, tmp_path / "old.pt")
    loaded = _model(RewardModelConfig())
    loaded.load(tmp_path / "old.pt")
    assert loaded.fitted and loaded.live_floor() == float("inf")
    assert received_absorbing(loaded, capped=True) == loaded.absorbing_reward()


def test_the_agents_numpy_reward_matches_the_ensemble_and_follows_new_weights(rng):
    """The per-step reward the agent gets (numpy, for speed) is the normalised ensemble mean, with weights a fit
    or a loaded state changed after the first call."""
    for obs_space, act_space, cfg in [(gym.spaces.Box(-1, 1, (5,)), gym.spaces.Box(-1, 1, (2,)), RewardModelConfig()),
                                      (gym.spaces.Box(-1, 1, (5,)), gym.spaces.Box(-1, 1, (2,)),
                                       RewardModelConfig(squares_lr=1e-2)),
                                      (gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(3), RewardModelConfig())]:
        act_space.seed(0)  # the actions drawn are the same on every run
        model = make_reward_model(obs_space, act_space, cfg)
        obs = rng.normal(size=(6, *obs_space.shape)).astype(np.float32)
        acts = np.stack([act_space.sample() for _ in range(6)])
        assert not model.reward(obs, acts).any()  # unfitted: nothing
        model.begin(model.step_features(obs, acts).unsqueeze(0) * 2)

        def torch_reward(model: RewardEnsemble = model, obs: np.ndarray = obs, acts: np.ndarray = acts) -> np.ndarray:
            with torch.no_grad():
                return model.normalised(model.step_features(obs, acts)).mean(0).numpy()

        first = model.reward(obs, acts)
        np.testing.assert_allclose(first, torch_reward(), rtol=1e-4, atol=1e-5)
        other = make_reward_model(obs_space, act_space, cfg)
        other.begin(model.step_features(obs, acts).unsqueeze(0))
        with torch.no_grad():
            other.out_mean.fill_(0.5)
            other.out_std.fill_(3.0)
            if cfg.squares_lr:  # the squares' own term counts in both paths
                other.body.square_weight.normal_()
        model.load_state_dict(other.state_dict())
        second = model.reward(obs, acts)
        np.testing.assert_allclose(second, torch_reward(), rtol=1e-4, atol=1e-5)
        assert np.abs(second - first).max() > 1e-3
        # a rollout's steps in one call (past NUMPY_ROWS: through torch) get what they get a few at a time
        many_obs = rng.normal(size=(NUMPY_ROWS * 3, *obs_space.shape)).astype(np.float32)
        many_acts = np.stack([act_space.sample() for _ in range(len(many_obs))])
        few = np.concatenate([model.reward(many_obs[i:i + 4], many_acts[i:i + 4]) for i in range(0, len(many_obs), 4)])
        # numpy and torch add float32 terms in their own order (and torch over its own threads): ~1e-5 apart
        np.testing.assert_allclose(model.reward(many_obs, many_acts), few, rtol=1e-4, atol=1e-5)


def _first(data: PreferenceData, n: int) -> PreferenceData:
    """The first `n` comparisons, keyed as a store's would be (clip ids, target)."""
    keys = tuple((i, 10_000 + i, float(data.target[i])) for i in range(n))
    return PreferenceData(data.left[:n], data.right[:n], data.target[:n], data.is_val[:n], data.left_absorbing[:n],
                          data.right_absorbing[:n], keys=keys)


def test_a_fit_costs_what_its_new_labels_ask_and_a_resumed_trainer_remembers_them(rng):
    """Gradient steps: `epochs` passes over the new comparisons plus at most `replay` old ones, none when nothing is
    new (also after a resume); with replay None, passes over all of them."""
    torch.manual_seed(0)
    cfg = RewardModelConfig(epochs=4, batch_size=16, replay=32, max_updates=10_000)
    model = _model(cfg)
    data = _synthetic_pairs(model, rng, 1000)  # the last 30% held out
    trainer = RewardTrainer(model, cfg, rng)
    assert trainer.update(_first(data, 200)).steps == 4 * 200 // 16
    grown = trainer.update(_first(data, 240))
    assert (grown.n_new, grown.steps) == (40, 4 * (40 + 32) // 16)
    assert trainer.update(_first(data, 240)).steps == 0
    resumed = RewardTrainer(_model(cfg), cfg, rng)
    resumed.load_state_dict(trainer.state_dict())
    assert resumed.update(_first(data, 240)).steps == 0
    assert resumed.update(_first(data, 250)).n_new == 10
    full = RewardTrainer(_model(cfg), dataclasses.replace(cfg, replay=None), rng)
    full.update(_first(data, 200))
    assert full.update(_first(data, 240)).steps == 4 * 240 // 16


def test_fits_on_new_labels_and_a_replay_learn_as_labels_arrive(rng):
    """Labels arriving 70 at a time, each fit on the new ones and 64 old ones: the model still learns the
    preference (held-out accuracy), for a fraction of the gradient steps of refitting on everything."""
    torch.manual_seed(0)
    data = _synthetic_pairs(_model(RewardModelConfig()), rng, 1000)
    steps = {}
    for replay in (64, None):
        cfg = RewardModelConfig(epochs=20, replay=replay, max_updates=10_000)
        model = _model(cfg)
        trainer = RewardTrainer(model, cfg, rng)
        total = 0
        for n in range(70, 701, 70):
            stats = trainer.update(dataclasses.replace(_first(data, n), is_val=torch.zeros(n, dtype=torch.bool)))
            total += stats.steps
        accuracy = trainer.evaluate(data, data.is_val)[1]
        steps[replay] = total
        assert accuracy >= 0.85, (replay, accuracy)
    assert steps[64] < 0.5 * steps[None], steps


def test_squared_actions_let_the_model_learn_a_quadratic_action_cost_from_few_labels(rng):
    """A MuJoCo-like reward: a linear function of the observation minus a control cost, sum of squared actions (half
    of a step's spread). From a few hundred labels the model that reads squared actions recovers the control cost,
    as MLP inputs or as a linear term of their own at its own rate; the plain MLP has to build the parabola from
    kinks and recovers much less of it."""
    w = rng.normal(size=OBS)

    def clip() -> tuple[np.ndarray, np.ndarray, float, int]:
        o, a = rng.normal(size=(T, OBS)), rng.uniform(-1, 1, size=(T, ACT))
        return o, a, float((0.5 * o @ w - 2.0 * (a**2).sum(1)).sum()), 0

    obs, acts = rng.normal(size=(2000, OBS)), rng.uniform(-1, 1, size=(2000, ACT))
    cost = (acts**2).sum(1)
    found = {}
    for kind, cfg in [("none", RewardModelConfig(action_squares=False)), ("inputs", RewardModelConfig()),
                      ("own term", RewardModelConfig(squares_lr=1e-2))]:
        torch.manual_seed(0)
        model = _model(cfg)
        data = preference_data(model, clip, 300)
        trainer = RewardTrainer(model, cfg, np.random.default_rng(0))
        for _ in range(3):
            trainer.update(data)
        _normalise(model, obs, acts)
        found[kind] = float(np.corrcoef(model.reward(obs, acts), -cost)[0, 1])
    assert min(found["inputs"], found["own term"]) > 0.7, found
    assert min(found["inputs"], found["own term"]) > found["none"] + 0.3, found
