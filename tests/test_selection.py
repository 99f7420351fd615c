import gymnasium as gym
import numpy as np
import torch

from prefrl.config import RewardModelConfig
from prefrl.data import Clip
from prefrl.reward_model import RewardEnsemble
from prefrl.selection import EnsembleSelector, RandomSelector, random_pairs, reference_pairs


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
    cfg = RewardModelConfig(members=2, layers=0)
    model = RewardEnsemble(gym.spaces.Box(-10, 10, (1,)), gym.spaces.Box(-1, 1, (1,)), cfg)
    with torch.no_grad():  # both members: r = obs (one linear layer each)
        model.net[0].weight[:] = torch.tensor([[[1.0], [0.0]], [[1.0], [0.0]]])
        model.net[0].bias.zero_()
    model.fitted.fill_(True)
    # clips whose obs differ a lot are confidently ordered; identical-valued clips are uncertain
    clips = [Clip(obs=np.full((4, 1), v, np.float32), acts=np.zeros((4, 1), np.float32),
                  true_rewards=np.zeros(4, np.float32)) for v in [0.0, 0.01, 5.0, -5.0, 0.02, 3.0]]
    ent = EnsembleSelector(model, "entropy", oversample=10)
    scores = ent.scores(clips, [(0, 1), (2, 3)])
    assert scores[0] > scores[1]
    with torch.no_grad():  # now the members disagree on the sign of the reward
        model.net[0].weight[1] = -model.net[0].weight[1]
    dis = EnsembleSelector(model, "disagreement", oversample=10)
    s = dis.scores(clips, [(0, 1), (2, 3)])
    assert s[1] > s[0]
    picked = dis.select(clips, 1, rng)
    a, b = picked[0]
    assert abs(clips[a].obs[0, 0] - clips[b].obs[0, 0]) > 2.0
