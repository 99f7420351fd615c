import numpy as np
import pytest

from prefrl.config import TeacherConfig
from prefrl.core.data import Answer, Clip
from prefrl.core.schedule import LabelSchedule
from prefrl.core.store import PreferenceStore
from prefrl.core.teachers import ScriptedTeacher, answer_pending


def _clip(rewards) -> Clip:
    r = np.asarray(rewards, dtype=np.float32)
    return Clip(obs=np.zeros((len(r), 1)), acts=np.zeros((len(r), 1)), true_rewards=r)


def test_oracle_prefers_higher_return_and_ties_are_equal(rng):
    t = ScriptedTeacher("oracle", TeacherConfig(), rng)
    assert t.answer(_clip([1, 2]), _clip([0, 2])) == Answer.LEFT
    assert t.answer(_clip([1, 2]), _clip([3, 2])) == Answer.RIGHT
    assert t.answer(_clip([1, 2]), _clip([2, 1])) == Answer.EQUAL


def test_mistake_teacher_flips_at_rate_epsilon(rng):
    t = ScriptedTeacher("mistake", TeacherConfig(epsilon=0.2), rng)
    answers = [t.answer(_clip([1.0]), _clip([0.0])) for _ in range(4000)]
    assert answers.count(Answer.RIGHT) / 4000 == pytest.approx(0.2, abs=0.025)


def test_stochastic_teacher_is_boltzmann_rational(rng):
    t = ScriptedTeacher("stochastic", TeacherConfig(beta=2.0), rng)
    answers = [t.answer(_clip([0.5]), _clip([0.0])) for _ in range(4000)]
    assert answers.count(Answer.LEFT) / 4000 == pytest.approx(1 / (1 + np.exp(-1.0)), abs=0.03)


def test_skip_equal_and_myopic_teachers(rng):
    skip = ScriptedTeacher("skip", TeacherConfig(skip_threshold=1.0), rng)
    assert skip.answer(_clip([0.2]), _clip([0.5])) == Answer.SKIP
    assert skip.answer(_clip([2.0]), _clip([0.5])) == Answer.LEFT
    equal = ScriptedTeacher("equal", TeacherConfig(equal_threshold=0.3), rng)
    assert equal.answer(_clip([1.0]), _clip([1.2])) == Answer.EQUAL
    assert equal.answer(_clip([1.0]), _clip([1.5])) == Answer.RIGHT
    # left earns early, right earns late: equal in sum, but a myopic teacher weights later steps more
    myopic = ScriptedTeacher("myopic", TeacherConfig(gamma=0.5), rng)
    assert myopic.answer(_clip([1, 0, 0]), _clip([0, 0, 1])) == Answer.RIGHT


def test_synthetic_teacher_answers_through_the_store(tmp_path, rng):
    store = PreferenceStore(tmp_path / "p.sqlite", env_id="E-v0")
    hi, lo = store.add_clip(_clip([1, 1])), store.add_clip(_clip([0, 0]))
    store.add_query(hi, lo, 0)
    store.add_query(lo, hi, 0)
    assert answer_pending(store, ScriptedTeacher("oracle", TeacherConfig(), rng)) == 2
    assert [lab.answer for lab in store.labels()] == [Answer.LEFT, Answer.RIGHT]
    assert {lab.labeler for lab in store.labels()} == {"oracle"}
    assert store.pending_queries() == []


def test_schedule_front_loads_then_decays():
    s = LabelSchedule(total=700, initial=175, horizon=1_000_000, t0=250_000)
    assert s.due(0) == 175 and s.due(1_000_000) == 700 and s.due(5_000_000) == 700
    dues = [s.due(t) for t in range(0, 1_000_001, 100_000)]
    assert dues == sorted(dues)
    gains = np.diff(dues)
    assert gains[0] > 2 * gains[-1]  # the rate decays as T0 / (T + T0)
