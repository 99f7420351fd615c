import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv

from prefrl.gym.environments import make_env
from prefrl.gym.states import StateRecorder
from prefrl.gym.wrapper import ClipRecorder, RewardVecEnvWrapper


def _venv(n: int) -> DummyVecEnv:
    venv = DummyVecEnv([lambda: make_env("prefrl/PointReach-v0") for _ in range(n)])
    venv.seed(0)
    return venv


def test_wrapper_keeps_shapes_and_replaces_rewards():
    venv = _venv(3)
    seen = []

    def reward_fn(obs, acts):
        seen.append((obs.copy(), acts.copy()))
        return obs[:, 0] * 10 + acts[:, 1]

    w = RewardVecEnvWrapper(venv, reward_fn)
    obs = w.reset()
    assert obs.shape == (3, 4) and w.observation_space == venv.observation_space
    acts = np.stack([w.action_space.sample() for _ in range(3)])
    new_obs, rewards, dones, infos = w.step(acts)
    assert new_obs.shape == (3, 4) and rewards.shape == (3,) and rewards.dtype == np.float32
    # the reward is computed from the observation *before* the step and the action taken
    np.testing.assert_allclose(rewards, obs[:, 0] * 10 + acts[:, 1], rtol=1e-5)
    np.testing.assert_array_equal(seen[0][0], obs)
    # the env's own reward is still there for logging, and differs from what the agent got
    true = np.array([i["true_reward"] for i in infos])
    assert np.all(true <= 0) and not np.allclose(true, rewards)


def test_a_scripted_score_is_the_true_reward_and_what_the_true_arm_trains_on():
    venv = DummyVecEnv([lambda: StateRecorder(make_env("prefrl/PointReach-v0")) for _ in range(2)])
    venv.seed(0)
    rec = ClipRecorder(n_envs=2, clip_length=5, capacity=10)
    w = RewardVecEnvWrapper(venv, None, rec, true_score=lambda clip: 100 + clip.states[:, 0])
    obs = w.reset()
    _, rewards, _, infos = w.step(np.stack([w.action_space.sample() for _ in range(2)]))
    # scored from the state before the step (PointReach's state is its observation), not the env's reward
    np.testing.assert_allclose(rewards, 100 + obs[:, 0], rtol=1e-6)
    np.testing.assert_allclose([i["true_reward"] for i in infos], rewards)
    for _ in range(4):
        w.step(np.stack([w.action_space.sample() for _ in range(2)]))
    assert len(rec.clips) == 2 and all(np.all(c.true_rewards > 98) for c in rec.clips)


def test_recorder_cuts_fixed_length_clips_within_episodes():
    venv = _venv(2)
    rec = ClipRecorder(n_envs=2, clip_length=15, capacity=100)
    w = RewardVecEnvWrapper(venv, None, rec)
    w.reset()
    for _ in range(120):  # 50-step episodes: 3 clips an episode per env, 5 steps dropped at each end
        w.step(np.stack([w.action_space.sample() for _ in range(2)]))
    assert len(rec.clips) == 2 * 2 * 3 + 2 * 1  # two full episodes, then 20 steps into the third
    for c in rec.clips:
        assert c.obs.shape == (15, 4) and c.acts.shape == (15, 2) and c.true_rewards.shape == (15,)
        assert c.start in (0, 15, 30)
        # a clip never crosses a reset: the goal (obs[2:4]) is fixed within an episode
        assert np.allclose(c.obs[:, 2:], c.obs[0, 2:])
    # episode returns are tracked for both rewards (here the same: no reward_fn)
    assert len(w.episode_returns) == 4
    assert all(t == p for t, p in w.episode_returns)


def test_forget_drops_asked_clips():
    rec = ClipRecorder(n_envs=1, clip_length=2, capacity=10)
    for t in range(8):
        rec.record(np.full((1, 4), t), np.zeros((1, 2)), np.zeros(1), np.zeros(1, dtype=bool), t)
    assert len(rec.clips) == 4
    rec.forget({0, 2})
    assert [int(c.obs[0, 0]) for c in rec.clips] == [2, 6]


def _ledge_venv(n: int) -> DummyVecEnv:
    venv = DummyVecEnv([lambda: StateRecorder(make_env("tests.factories:make_ledge")) for _ in range(n)])
    venv.seed(0)
    return venv


def test_clips_cut_short_by_termination_end_in_the_absorbing_state():
    rec = ClipRecorder(n_envs=1, clip_length=10, capacity=100)
    w = RewardVecEnvWrapper(_ledge_venv(1), None, rec)
    w.reset()
    for _ in range(8):  # always step right: off the ledge after 5 or 6 steps, long before the time limit
        w.step(np.array([2]))
    first = rec.clips[0]
    live = first.length - first.absorbing
    assert first.length == 10 and 4 <= live <= 7
    assert first.true_rewards[:live].tolist() == [1.0] * live and not first.true_rewards[live:].any()
    # the absorbing steps repeat the last real step, so a person sees the clip freeze where it ended
    assert np.all(first.obs[live:] == first.obs[live - 1]) and np.all(first.states[live:] == first.states[live - 1])
    assert abs(first.obs[live - 1, 0]) < 0.5 <= abs(first.obs[live - 1, 0] + 0.1) + 0.05
    # off: the partial clip is dropped, as at a time limit
    rec_off = ClipRecorder(n_envs=1, clip_length=10, capacity=100, absorbing=False)
    w_off = RewardVecEnvWrapper(_ledge_venv(1), None, rec_off)
    w_off.reset()
    for _ in range(8):
        w_off.step(np.array([2]))
    assert len(rec_off.clips) == 0


def test_agent_receives_the_absorbing_reward_for_the_steps_it_loses_by_terminating():
    w = RewardVecEnvWrapper(_ledge_venv(2), lambda o, a: np.zeros(len(o)), None, absorbing_reward=lambda: -2.0,
                            gamma=0.9, horizon=100)
    w.reset()
    got = []
    for _ in range(8):
        _, rewards, dones, _ = w.step(np.array([2, 1]))  # env 0 walks off the ledge; env 1 stays
        got.append((rewards.copy(), dones.copy()))
    ended = [(t, r) for t, (r, d) in enumerate(got) if d[0]]
    assert len(ended) == 1
    t, rewards = ended[0]
    # steps t+1..99 of the absorbing state, discounted from the last real step
    expected = -2.0 * sum(0.9**k for k in range(1, 100 - t))
    assert np.isclose(rewards[0], expected, rtol=1e-4) and rewards[1] == 0.0
    assert all(r[0] == 0.0 for r, _ in got[:t])
    assert np.isclose(w.tail_weight(100), 0.0) and w.tail_weight(1) > w.tail_weight(50) > 0


def _one_learn(per_step: bool, normalise: bool, rollouts: int = 2):
    """PPO on a learned reward (a plain function of the step) for `rollouts` rollouts of 2 CartPole copies whose
    episodes both terminate and hit a 40-step time limit."""
    import gymnasium as gym
    from stable_baselines3 import PPO
    from tqdm import tqdm

    from prefrl.gym.wrapper import RolloutRewardNormalize, RolloutRewards
    from prefrl.session import _Progress

    venv = DummyVecEnv([lambda: gym.make("CartPole-v1", max_episode_steps=40) for _ in range(2)])
    venv.seed(0)

    def reward_fn(obs, acts):  # sums and products only: the same bits a row at a time or in a batch
        return obs[:, 0] * 2.0 + obs[:, 2] - 0.25 * np.asarray(acts, dtype=np.float64).reshape(-1)

    wrapper = RewardVecEnvWrapper(venv, reward_fn, absorbing_reward=lambda: -2.0, gamma=0.99, horizon=40)
    outer = RolloutRewardNormalize(wrapper, gamma=0.99) if normalise else wrapper
    agent = PPO("MlpPolicy", outer, n_steps=64, batch_size=64, n_epochs=1, seed=0, verbose=0)
    rewards = RolloutRewards(wrapper, outer, per_step=per_step)
    agent.learn(64 * 2 * rollouts, callback=_Progress(tqdm(disable=True), None, rewards))
    return agent, wrapper, outer, rewards


def test_learned_rewards_given_a_rollout_at_a_time_equal_those_given_step_by_step():
    for normalise in (True, False):
        a, wa, oa, ra = _one_learn(per_step=True, normalise=normalise)
        b, wb, ob, rb = _one_learn(per_step=False, normalise=normalise)
        assert not ra.on and rb.on
        buf_a, buf_b = a.rollout_buffer, b.rollout_buffer  # the last rollout's
        np.testing.assert_array_equal(buf_a.actions, buf_b.actions)  # the same steps were taken
        assert np.abs(buf_b.rewards).max() > 0.01  # the learned reward reached the buffer (not the placeholder 0)
        np.testing.assert_allclose(buf_b.rewards, buf_a.rewards, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(buf_b.advantages, buf_a.advantages, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(buf_b.returns, buf_a.returns, rtol=1e-4, atol=1e-5)
        ended = [t for t, _ in wa.episode_returns]
        assert len(ended) >= 4 and ended == [t for t, _ in wb.episode_returns]
        np.testing.assert_allclose([p for _, p in wb.episode_returns], [p for _, p in wa.episode_returns], rtol=1e-5)
        if normalise:  # the reward statistics moved as they do step by step, and hold the same running returns
            assert oa.ret_rms.count == ob.ret_rms.count > 200
            np.testing.assert_allclose(ob.ret_rms.var, oa.ret_rms.var, rtol=1e-6)
            np.testing.assert_allclose(ob.returns, oa.returns, rtol=1e-6)
            assert not ob.deferred


def test_absorbing_tails_reach_the_rollout_rewards():
    _, wrapper, _, rewards = _one_learn(per_step=False, normalise=False, rollouts=1)
    _, per_step, _, _ = _one_learn(per_step=True, normalise=False, rollouts=1)
    # CartPole's falls terminate: the absorbing reward (-2 a step, discounted over the steps left) is in the
    # predicted returns of both ways
    assert min(p for _, p in per_step.episode_returns) < -20
    np.testing.assert_allclose([p for _, p in wrapper.episode_returns], [p for _, p in per_step.episode_returns],
                               rtol=1e-5)


def test_a_plain_vecnormalize_keeps_rewards_step_by_step():
    from stable_baselines3.common.vec_env import VecNormalize

    from prefrl.gym.wrapper import RolloutRewards

    w = RewardVecEnvWrapper(_venv(2), lambda o, a: o[:, 0])
    assert not RolloutRewards(w, VecNormalize(w)).on  # an older checkpoint's normaliser: its statistics stay right
    assert RolloutRewards(w, w).on
    assert not RolloutRewards(RewardVecEnvWrapper(_venv(2), None), w).on  # no learned reward
