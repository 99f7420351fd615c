"""The LLM adapter: tiny model, SFT, text reward model, the RLOO loop, TRL's preference format."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("trl")

from prefrl.config import RewardModelConfig, TeacherConfig
from prefrl.core.data import Answer, Clip
from prefrl.core.reward.trainer import RewardTrainer
from prefrl.core.selection import EnsembleSelector
from prefrl.core.store import PreferenceStore
from prefrl.core.teachers import ScriptedTeacher, answer_pending
from prefrl.errors import PrefrlError
from prefrl.llm import tasks
from prefrl.llm.formats import export_preference, import_preference
from prefrl.llm.loop import TextTrainConfig, train_text
from prefrl.llm.model import build_tiny_model, char_tokenizer, load_policy
from prefrl.llm.reward import TextRewardModel
from prefrl.llm.sft import PromptCompletion, SftConfig, read_jsonl, run_sft


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), layers=1, width=32)


def text_clip(tok, prompt: str, completion: str) -> Clip:
    return Clip(obs=np.asarray(tok(prompt + completion)["input_ids"])[None], acts=np.zeros((1, 0)),
                true_rewards=np.array([tasks.letter_share(prompt, completion)]), prompt=prompt, completion=completion)


def random_pairs(n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    return list(zip(tasks.prompts(n, rng), ("".join(rng.choice(list(tasks.LETTERS), tasks.LENGTH)) for _ in range(n))))


def test_tiny_model_round_trips(tiny: Path) -> None:
    model, tok = load_policy(tiny, "cpu")
    assert model.config.n_layer == 1 and model.config.n_embd == 32
    text = "letter: q\nabc"
    assert tok.decode(tok(text)["input_ids"]) == text
    assert tok.pad_token_id != tok.eos_token_id
    out = model.generate(**tok(["letter: a\n"], return_tensors="pt"), max_new_tokens=3, do_sample=False)
    assert out.shape == (1, len("letter: a\n") + 3)


def test_load_policy_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(PrefrlError, match="save_pretrained"):
        load_policy(tmp_path / "missing", "cpu")


def test_sft_lowers_loss(tiny: Path, tmp_path: Path, rng: np.random.Generator) -> None:
    data = tasks.write_jsonl(tmp_path / "demos.jsonl", tasks.demos(256, rng))
    res = run_sft(data, tiny, tmp_path / "sft", SftConfig(steps=20, batch_size=32, device="cpu"))
    assert res.last_loss < res.first_loss - 0.3
    load_policy(res.out, "cpu")  # loads with from_pretrained


def test_sft_data_errors_name_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n')
    with pytest.raises(PrefrlError, match=r"bad.jsonl:2: field 'completion'"):
        read_jsonl(bad, PromptCompletion)
    bad.write_text("not json\n")
    with pytest.raises(PrefrlError, match=r"bad.jsonl:1: not JSON"):
        read_jsonl(bad, PromptCompletion)


def test_text_reward_model_learns_the_letter_task_and_reads_the_prompt(tmp_path: Path,
                                                                      rng: np.random.Generator) -> None:
    torch.manual_seed(0)
    tok = char_tokenizer()
    store = PreferenceStore(tmp_path / "prefs.sqlite", env_id="text")
    pairs = random_pairs(600, rng)
    for i in range(0, 600, 2):
        store.add_query(store.add_clip(text_clip(tok, *pairs[i])), store.add_clip(text_clip(tok, *pairs[i + 1])), 0)
    answer_pending(store, ScriptedTeacher("oracle", TeacherConfig(), rng))
    cfg = RewardModelConfig(hidden=32, lr=3e-3)  # the text loop's: every fit on every label (replay None)
    loop_default = next(f for f in dataclasses.fields(TextTrainConfig) if f.name == "reward_model")
    assert loop_default.default_factory() == cfg  # type: ignore[misc]
    model = TextRewardModel(tok, cfg)
    trainer = RewardTrainer(model, cfg, rng)  # the Gym side's trainer, unchanged
    for _ in range(5):
        trainer.fit(store)
    model.normalise_outputs([text_clip(tok, p, c) for p, c in pairs])

    fresh = random_pairs(1000, rng)
    r = model.reward_texts([p for p, _ in fresh], [c for _, c in fresh])
    s = np.array([tasks.letter_share(p, c) for p, c in fresh])
    decided = s[0::2] != s[1::2]
    accuracy = np.mean(((r[0::2] - r[1::2]) > 0)[decided] == ((s[0::2] - s[1::2]) > 0)[decided])
    assert accuracy > 0.7, accuracy

    # the same completions rank the other way round under the other prompt
    a, c = "a" * 12 + "bdef", "c" * 12 + "bdef"
    ra = model.reward_texts(["letter: a\n", "letter: a\n"], [a, c])
    rc = model.reward_texts(["letter: c\n", "letter: c\n"], [a, c])
    assert ra[0] > ra[1] and rc[1] > rc[0], (ra, rc)

    # disagreement-based selection works on it unchanged
    clips = [text_clip(tok, p, c) for p, c in fresh[:40]]
    picked = EnsembleSelector(model, "disagreement").select(clips, 5, rng)
    assert len(picked) == 5 and all(i != j for i, j in picked)
    assert model.absorbing_reward() == 0.0


def test_train_text_end_to_end(tiny: Path, tmp_path: Path, rng: np.random.Generator) -> None:
    prompts = tasks.write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": p} for p in tasks.prompts(16, rng)])
    cfg = TextTrainConfig(model=tiny, prompts=prompts, out=tmp_path / "run", labels=12, steps=2, batch_size=4,
                          num_generations=2, label_every=1, max_completion_tokens=8, eval_prompts=4,
                          scale_samples=8, device="cpu",
                          reward_model=RewardModelConfig(hidden=16, max_updates=20, lr=3e-3))
    summary = train_text(cfg)
    assert summary["labels"] > 0 and 0.0 <= summary["final_score"] <= 1.0
    store = PreferenceStore(tmp_path / "run" / "prefs.sqlite")
    assert store.count_queries("asked") <= 12
    clip = store.clip(store.clip_ids()[0])
    assert clip.prompt is not None and clip.prompt.startswith(tasks.PREFIX) and clip.completion is not None
    with (tmp_path / "run" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 1, 2] and {"kl", "learned", "true", "samples"} <= set(rows[0])
    assert (tmp_path / "run" / "report.png").exists()
    load_policy(tmp_path / "run" / "policy", "cpu")


def test_train_text_rejects_bad_teacher_score(tiny: Path, tmp_path: Path) -> None:
    prompts = tasks.write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "letter: a\n"}])
    with pytest.raises(PrefrlError, match="--teacher-score 'nope' is not of the form package.module:function"):
        train_text(TextTrainConfig(model=tiny, prompts=prompts, out=tmp_path / "run", teacher_score="nope",
                                   device="cpu"))
    with pytest.raises(PrefrlError, match="has no callable 'no_such_score'"):
        train_text(TextTrainConfig(model=tiny, prompts=prompts, out=tmp_path / "run",
                                   teacher_score="prefrl.llm.tasks:no_such_score", device="cpu"))


def test_preference_format_round_trip(tmp_path: Path) -> None:
    tok = char_tokenizer()
    src = PreferenceStore(tmp_path / "a.sqlite", env_id="text")
    for prompt, left, right, answer in [("letter: a\n", "aab", "bbb", Answer.LEFT),
                                        ("letter: b\n", "aab", "bbb", Answer.RIGHT),
                                        ("letter: c\n", "ccc", "ccc", Answer.EQUAL)]:
        q = src.add_query(src.add_clip(text_clip(tok, prompt, left)), src.add_clip(text_clip(tok, prompt, right)), 0)
        src.add_label(q, answer, "oracle")
    path = tmp_path / "prefs.jsonl"
    assert export_preference(src, path) == 2
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records == [{"prompt": "letter: a\n", "chosen": "aab", "rejected": "bbb"},
                       {"prompt": "letter: b\n", "chosen": "bbb", "rejected": "aab"}]
    dst = PreferenceStore(tmp_path / "b.sqlite", env_id="text")
    assert import_preference(dst, path) == 2
    assert dst.count_queries("asked") == 0 and dst.count_labels() == 2
    again = tmp_path / "again.jsonl"
    export_preference(dst, again)
    assert again.read_text() == path.read_text()


def test_cli_exports_and_imports_the_preference_format(tmp_path: Path) -> None:
    from prefrl.interfaces.cli import main

    records = [{"prompt": "letter: a\n", "chosen": "aab", "rejected": "bbb"},
               {"prompt": "letter: b\n", "chosen": "bbb", "rejected": "aab"}]
    src = tasks.write_jsonl(tmp_path / "in.jsonl", records)
    assert main(["import", str(src), str(tmp_path / "run"), "--format", "preference"]) == 0
    assert PreferenceStore(tmp_path / "run" / "prefs.sqlite").count_labels() == 2
    out = tmp_path / "out.jsonl"
    assert main(["export", str(tmp_path / "run"), "--out", str(out), "--format", "preference"]) == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == records

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "letter: a\\n", "chosen": "a"}\n')
    assert main(["import", str(bad), str(tmp_path / "new"), "--format", "preference"]) != 0
    assert not (tmp_path / "new" / "prefs.sqlite").exists()  # a malformed file changes nothing


@pytest.mark.slow
def test_learned_reward_recovers_most_of_the_true_gain(tmp_path: Path) -> None:
    from prefrl.llm.cli import DemoArgs, demo

    torch.set_num_threads(1)
    s = demo(DemoArgs(out=tmp_path / "demo"))  # the demo's defaults: 400 labels, 200 RL steps (~3 min on 2 cores)
    assert s["true_score"] > s["base_score"] + 0.3, s
    assert s["labels"] <= 400 and s["gain_ratio"] > 0.7, s
    assert np.mean([x["tuned_score"] for x in s["samples"]]) > np.mean([x["sft_score"] for x in s["samples"]])
