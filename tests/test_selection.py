import gymnasium as gym
import numpy as np
import torch

from prefrl.config import RewardModelConfig
from prefrl.core.data import Clip
from prefrl.core.reward.factory import make_reward_model
from prefrl.core.selection import EnsembleSelector, RandomSelector, random_pairs, reference_pairs


def test_random_pairs_use_distinct_clips_when_there_are_enough(rng):
    pairs = random_pairs(20, 10, rng)
    flat = [i for p in pairs for i in p]
    assert len(pairs) == 10 and len(set(flat)) == 20
    assert all(a != b for a, b in random_pairs(5, 8, rng))
    assert RandomSelector().select([], 3, rng) == []


def test_reference_pairs_pair_unused_clips_with_known_ones(rng):
    pairs = reference_pairs(10, [101, 102], 4, exclude={0, 1, 2}, rng=rng)
    new = [i for i, _ in pairs]
    assert len(pairs) == 4 and len(set(new)) == 4 and not set(new) & {0, 1, 2}
    assert {r for _, r in pairs} <= {101, 102}
    assert len(reference_pairs(5, [7], 9, exclude={0, 1}, rng=rng)) == 3  # only three clips are free
    assert reference_pairs(5, [], 3, exclude=set(), rng=rng) == []


def test_disagreement_and_entropy_pick_the_uncertain_pairs(rng):
    cfg = RewardModelConfig(members=2, layers=0, action_squares=False)  # r = a weighted sum of (obs, act)
    model = make_reward_model(gym.spaces.Box(-10, 10, (1,)), gym.spaces.Box(-1, 1, (1,)), cfg)
    net = model.body.net
    with torch.no_grad():  # both members: r = obs (one linear layer each)
        net[0].weight[:] = torch.tensor([[[1.0], [0.0]], [[1.0], [0.0]]])
        net[0].bias.zero_()
    model.is_fitted.fill_(True)
    # clips whose obs differ a lot are confidently ordered; identical-valued clips are uncertain
    clips = [Clip(obs=np.full((4, 1), v, np.float32), acts=np.zeros((4, 1), np.float32),
                  true_rewards=np.zeros(4, np.float32)) for v in [0.0, 0.01, 5.0, -5.0, 0.02, 3.0]]
    ent = EnsembleSelector(model, "entropy", oversample=10)
    scores = ent.scores(clips, [(0, 1), (2, 3)])
    assert scores[0] > scores[1]
    with torch.no_grad():  # now the members disagree on the sign of the reward
        net[0].weight[1] = -net[0].weight[1]
    dis = EnsembleSelector(model, "disagreement", oversample=10)
    s = dis.scores(clips, [(0, 1), (2, 3)])
    assert s[1] > s[0]
    picked = dis.select(clips, 1, rng)
    a, b = picked[0]
    assert abs(clips[a].obs[0, 0] - clips[b].obs[0, 0]) > 2.0
    # against stored clips: each new clip meets a stored one, and the pair the members disagree on most is kept
    stored = {7: clips[0], 8: clips[2]}
    loaded: list[int] = []

    def load(clip_id: int) -> Clip:
        loaded.append(clip_id)
        return stored[clip_id]

    (i, r), = dis.select_references(clips, [7, 8], 1, exclude={0, 2}, rng=rng, load=load)
    assert i not in {0, 2} and r in stored and sorted(loaded) == sorted(set(loaded))  # each stored clip read once
    # all four free clips are candidates; the one at -5 is 5 or 10 from either stored clip, the others closer
    assert abs(clips[i].obs[0, 0] - stored[r].obs[0, 0]) >= 5.0
    loaded.clear()
    assert len(RandomSelector().select_references(clips, [7], 2, set(), rng, load)) == 2 and not loaded
