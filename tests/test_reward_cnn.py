"""The CNN body for image observations, and the factory that picks a body for a space."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.config import RewardModelConfig
from prefrl.core.data import Clip
from prefrl.core.reward.cnn import CnnBody, conv_dtype
from prefrl.core.reward.factory import make_reward_model
from prefrl.core.reward.mlp import MlpBody
from prefrl.core.reward.model import RewardEnsemble
from prefrl.core.reward.trainer import PreferenceData, RewardTrainer
from prefrl.errors import PrefrlError
from tests.factories import preference_data

SIDE, T, N_ACT = 48, 4, 3


def _model(cfg: RewardModelConfig, shape=(SIDE, SIDE, 1)) -> RewardEnsemble:
    model = make_reward_model(gym.spaces.Box(0, 255, shape, np.uint8), gym.spaces.Discrete(N_ACT), cfg)
    assert isinstance(model.body, CnnBody)
    return model


def _grouped_reference(body: CnnBody, x: torch.Tensor) -> torch.Tensor:
    """Member i's output on its own inputs (E, N, D), computed by the grouped layers over member-stacked channels
    (how checkpoints' weights are laid out)."""
    e, n = x.shape[:2]
    img = x[..., :body.obs_dim].float().div(255).reshape(e * n, *body.obs_shape)
    img = img.reshape(e, n, *body.image).transpose(0, 1).reshape(n, e * body.image[0], *body.image[1:])
    h = body.convs(img.contiguous()).reshape(n, e, -1).transpose(0, 1)
    return body.dense(torch.cat([h, x[..., body.obs_dim:].float()], dim=-1)).squeeze(-1)


def test_members_share_grouped_weights_run_one_by_one_and_differ(rng):
    torch.manual_seed(0)
    model = _model(RewardModelConfig(members=3, precision="float32"), shape=(2, SIDE, SIDE))  # channel-first
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(c.groups == 3 for c in convs)  # the checkpoint's layout
    x = model.step_features(rng.integers(0, 256, (2, 5, 2, SIDE, SIDE), dtype=np.uint8),
                            rng.integers(0, N_ACT, (2, 5)))
    assert x.dtype == torch.uint8 and x.shape == (2, 5, 2 * SIDE * SIDE + N_ACT)
    shared = model.body.shared(x)
    assert shared.shape == (3, 2, 5)
    own = model.body.per_member(x.unsqueeze(0).expand(3, *x.shape))
    torch.testing.assert_close(shared, own)  # the shared-input shortcut computes the same thing
    with torch.no_grad():
        reference = _grouped_reference(model.body, x.reshape(1, 10, -1).expand(3, -1, -1))
    torch.testing.assert_close(shared.reshape(3, 10), reference, rtol=1e-4, atol=1e-5)
    assert (shared[0] - shared[1]).abs().min() > 0 and (shared[1] - shared[2]).abs().min() > 0
    # each member sees its own inputs: changing member 1's input changes only member 1's output
    per = x.unsqueeze(0).repeat(3, 1, 1, 1)
    per[1] = 255 - per[1]
    out = model.body.per_member(per)
    torch.testing.assert_close(out[[0, 2]], shared[[0, 2]])
    assert not torch.allclose(out[1], shared[1])


def test_bfloat16_convolutions_give_float32_outputs_within_its_rounding_and_float32_gradients(rng):
    """The convolutions in bfloat16 (pixels 0-255 are exact in it; the weights are rounded to 8 significant bits):
    the rewards are float32 and near float32's, and the weights and their gradients stay float32."""
    torch.manual_seed(0)
    models = {p: _model(RewardModelConfig(members=2, precision=p)) for p in ("float32", "bfloat16")}
    models["bfloat16"].load_state_dict(models["float32"].state_dict())
    x = models["float32"].step_features(rng.integers(0, 256, (64, SIDE, SIDE, 1), dtype=np.uint8),
                                        rng.integers(0, N_ACT, 64))
    out = {p: m.body.shared(x) for p, m in models.items()}
    assert out["bfloat16"].dtype == torch.float32
    scale = out["float32"].abs().max()
    assert 0 < (out["bfloat16"] - out["float32"]).abs().max() < 0.03 * scale  # rounded, not another function
    out["bfloat16"].square().sum().backward()
    grads = [p.grad for p in models["bfloat16"].body.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and g.abs().sum() > 0 for g in grads)


def test_auto_precision_is_bfloat16_only_where_the_cpu_computes_it(monkeypatch):
    cpu = torch.device("cpu")
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    assert conv_dtype("auto", cpu) == torch.float32 and conv_dtype("bfloat16", cpu) == torch.bfloat16
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert conv_dtype("auto", cpu) == torch.bfloat16 and conv_dtype("float32", cpu) == torch.float32


def _bright_pairs(model: RewardEnsemble, rng: np.random.Generator, n: int) -> PreferenceData:
    """Noisy images whose true per-step reward is the brightness of their top-left quarter."""

    def clip() -> tuple[np.ndarray, np.ndarray, float, int]:
        imgs = rng.integers(0, 256, (T, SIDE, SIDE, 1)).astype(np.float64)
        level = rng.uniform(0, 255, T)
        imgs[:, :SIDE // 2, :SIDE // 2, 0] = 0.5 * imgs[:, :SIDE // 2, :SIDE // 2, 0] + 0.5 * level[:, None, None]
        return imgs.astype(np.uint8), rng.integers(0, N_ACT, T), float(level.sum()), 0

    return preference_data(model, clip, n, val_share=0.25)


@pytest.mark.parametrize("image_steps,precision", [(None, "float32"), (2, "float32"), (2, "bfloat16")])
def test_cnn_ensemble_learns_a_synthetic_image_preference(rng, image_steps, precision):
    """Reading every step of a clip, or 2 random steps of its 4 per gradient step (the return scaled up), given
    the same number of frames through the network: twice the updates; and with the convolutions in bfloat16."""
    torch.manual_seed(0)
    cfg = RewardModelConfig(members=2, batch_size=16, lr=1e-3, epochs=10, max_updates=150, image_steps=image_steps,
                            precision=precision)
    model = _model(cfg)
    data = _bright_pairs(model, rng, 320)
    trainer = RewardTrainer(model, cfg, rng)  # the MLP's trainer, unchanged
    before = trainer.evaluate(data, data.is_val)[1]
    for _ in range(2 if image_steps is None else 4):
        stats = trainer.update(data)
    # 2 of 4 steps is the noisiest estimate there is (runs read 8 of 25): it learns, a little less well here
    bar = 0.8 if image_steps is None else 0.7  # val_accuracy is a float32: 56 of 80 right is 0.69999999
    assert stats.val_accuracy >= bar - 1e-6, (before, stats)
    assert stats.val_accuracy > before + 0.2


def test_save_load_round_trip_and_output_normalisation(tmp_path, rng):
    model = _model(RewardModelConfig())
    obs, acts = rng.integers(0, 256, (300, SIDE, SIDE, 1), dtype=np.uint8), rng.integers(0, N_ACT, 300)
    model.begin(model.step_features(obs[:2], acts[:2]))
    model.normalise_outputs([Clip(obs=obs, acts=acts, true_rewards=np.zeros(len(obs)))])
    per_member = model.normalised(model.step_features(obs, acts))
    torch.testing.assert_close(per_member.mean(1), torch.zeros(3), atol=1e-4, rtol=0)
    model.save(tmp_path / "model.pt")
    other = _model(RewardModelConfig())
    assert not np.allclose(other.reward(obs[:8], acts[:8]), model.reward(obs[:8], acts[:8]))
    other.load(tmp_path / "model.pt")
    np.testing.assert_array_equal(other.reward(obs[:8], acts[:8]), model.reward(obs[:8], acts[:8]))


def test_factory_picks_the_model_and_names_the_fix_for_other_spaces():
    cfg = RewardModelConfig()
    act = gym.spaces.Discrete(2)
    assert isinstance(make_reward_model(gym.spaces.Box(-1, 1, (5,)), act, cfg).body, MlpBody)
    assert isinstance(make_reward_model(gym.spaces.Box(0, 255, (84, 84, 4), np.uint8), act, cfg).body, CnnBody)
    with pytest.raises(PrefrlError, match="FlattenObservation"):
        make_reward_model(gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,))}), act, cfg)
    with pytest.raises(PrefrlError, match="FlattenObservation"):
        make_reward_model(gym.spaces.Box(-1, 1, (4, 4)), act, cfg)
    with pytest.raises(PrefrlError, match="ResizeObservation"):
        make_reward_model(gym.spaces.Box(0, 255, (32, 32, 3), np.uint8), act, cfg)


def test_l2_shrinks_the_convolutions_too(rng):
    """The adapted L2 weight regularises the whole CNN, not only its dense layers."""
    torch.manual_seed(0)
    cfg = RewardModelConfig(members=2, batch_size=16, lr=1e-3, epochs=2, max_updates=40)
    model = _model(cfg)
    data = _bright_pairs(model, rng, 64)
    twin = _model(cfg)
    twin.load_state_dict(model.state_dict())

    def conv_norm(m: RewardEnsemble) -> float:
        return sum(float((c.weight**2).sum()) for c in m.modules() if isinstance(c, torch.nn.Conv2d))

    start = conv_norm(model)
    RewardTrainer(model, dataclasses.replace(cfg, l2=1.0), np.random.default_rng(0)).update(data)
    RewardTrainer(twin, dataclasses.replace(cfg, l2=0.0), np.random.default_rng(0)).update(data)
    assert conv_norm(model) < 0.9 * start
    assert conv_norm(model) < 0.9 * conv_norm(twin)


def test_returns_from_some_steps_of_a_clip_average_to_the_whole_return(rng):
    """The estimate a gradient step makes from K of T steps (scaled by T/K, absorbing steps counted apart) is
    unbiased: over every choice of K positions it averages to the return of all T steps."""
    import itertools

    torch.manual_seed(0)
    model = _model(RewardModelConfig(members=2))
    obs = rng.integers(0, 256, (2, 3, T, SIDE, SIDE, 1), dtype=np.uint8)
    feats = model.step_features(obs, rng.integers(0, N_ACT, (2, 3, T)))  # (E, P, T, D)
    with torch.no_grad():
        model.absorbing.copy_(torch.tensor([0.7, -1.3]))
    absorbing = torch.tensor([[0, 1, 3], [2, 0, 1]], dtype=torch.float32)
    with torch.no_grad():
        whole = model.member_returns(feats, absorbing)
        subsets = [torch.tensor(c) for c in itertools.combinations(range(T), 2)]
        estimates = torch.stack([model.member_returns(feats[:, :, pos], absorbing, steps=(pos, T)) for pos in subsets])
    torch.testing.assert_close(estimates.mean(0), whole, rtol=1e-5, atol=1e-5)
    assert (estimates - whole).abs().max() > 1e-3  # one estimate alone is not the return


def test_image_models_replay_by_their_own_bound(rng):
    """Images replay `image_replay` old labels a fit (CNN fits are a run's cost); flat observations' `replay` is not
    theirs."""
    cfg = RewardModelConfig(members=2, batch_size=4, epochs=1, image_replay=2, replay=None, max_updates=1000)
    model = _model(cfg)
    data = _bright_pairs(model, rng, 12)
    keyed = [PreferenceData(data.left[:n], data.right[:n], data.target[:n], torch.zeros(n, dtype=torch.bool),
                            data.left_absorbing[:n], data.right_absorbing[:n],
                            keys=tuple((i, 100 + i, float(data.target[i])) for i in range(n))) for n in (8, 12)]
    trainer = RewardTrainer(model, cfg, rng)
    assert trainer.update(keyed[0]).steps == 8 // 4
    grown = trainer.update(keyed[1])
    assert (grown.n_new, grown.steps) == (4, (4 + 2) // 4 + 1)  # ceil(6 / 4) passes of batch 4

