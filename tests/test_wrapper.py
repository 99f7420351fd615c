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
