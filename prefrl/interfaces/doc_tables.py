"""The generated tables of docs/benchmarks.md: which rows make each one (`DOC_TABLES`), how each kind renders, and
`update_doc_tables`, which rewrites what lies between a table's markers and keeps the prose around it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from prefrl.errors import PrefrlError
from prefrl.interfaces.benchmark import SUITES
from prefrl.interfaces.rows import iqm, normalised_ratio, ratios_table, read_rows, runs_table


@dataclass(frozen=True)
class DocTable:
    """A table of docs/benchmarks.md generated from result rows."""

    rows: tuple[str, ...]
    """Rows files, relative to the repository root."""
    arms: tuple[str, ...]
    """Arms shown, in this order."""
    kind: Literal["runs", "ratios"] = "runs"
    """runs: a line per env and arm (`runs_table`); ratios: a line per env, a column per arm (`ratios_table`)."""
    envs: tuple[str, ...] = ()
    """Envs shown (default: every env in the rows)."""

    def render(self, root: Path) -> str:
        results: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        for name in self.rows:
            for row in read_rows(root / name):
                key = row["env"], row["arm"], row["seed"]
                if key in seen:
                    raise PrefrlError(f"{name}: {key} (env, arm, seed) appears twice in the rows of one table: "
                                      "keep one row a run")
                seen.add(key)
                results.append(row)
        if self.kind == "ratios":
            return ratios_table(results, list(self.arms), list(self.envs))
        return runs_table(results, list(self.arms), list(self.envs))


LLM_ROW_FIELDS = ("task", "arm", "seed", "labels", "steps", "beta", "base_score", "true_score", "learned_score",
                  "gain_ratio")
"""What a row of docs/benchmark-results-llm.jsonl (scripts/benchmark_llm.py) holds at least."""


def read_llm_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of scripts/benchmark_llm.py, one run (seed and arm) a line; a bad line raises PrefrlError."""
    return read_rows(path, LLM_ROW_FIELDS, "scripts/benchmark_llm.py")


@dataclass(frozen=True)
class CostTable(DocTable):
    """What the loop costs beside plain PPO (rows with `batch` and `stage_s`): per batch, env and arm, the mean wall
    time, its ratio to the true-reward arm of the same batch, and the seconds of the stages the loop adds (reward
    inference, reward-model fitting on the agent's path and beside it, asking and answering).

    Runs that start together do not end together: once the first run of a batch ends, those still running get more of
    the machine, which shortens the slower arm's wall time. So the ratio is also given at equal load: at the largest
    step that every run of both arms reached before the first run of the batch ended (rows with `wall_curve`)."""

    def render(self, root: Path) -> str:
        return self.table([r for name in self.rows for r in read_rows(root / name) if "stage_s" in r])

    @staticmethod
    def table(rows: list[dict[str, Any]]) -> str:
        """The table of these rows (each with `stage_s`)."""
        lines = ["| batch | env | arm | steps | labels | wall s | learned / true wall | at equal load (step) | "
                 "return | reward inference s | fit on path s | fit beside s | store s | policy update s | env s |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault((r.get("batch", ""), r["env"], r["arm"]), []).append(r)
        first_end: dict[str, float] = {}
        for r in rows:
            first_end[r.get("batch", "")] = min(first_end.get(r.get("batch", ""), math.inf), float(r["wall_s"]))
        for (batch, env, arm), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "true",
                                                                              kv[0][2])):
            wall = float(np.mean([r["wall_s"] for r in runs]))
            true = groups.get((batch, env, "true"))
            ratio = "–" if arm == "true" or not true else f"{wall / np.mean([r['wall_s'] for r in true]):.2f}"
            equal = "–" if arm == "true" or not true else equal_load_ratio(runs, true, first_end[batch])

            def stage(name: str, runs: list[dict[str, Any]] = runs) -> str:
                return f"{np.mean([r['stage_s'].get(name, 0.0) for r in runs]):.0f}"

            labels = np.mean([r["labels"] for r in runs])
            lines.append(f"| {batch} | {env} | {arm} | {runs[0]['env_steps']:,} | {labels:.0f}"
                         f" | {wall:.0f} | {ratio} | {equal} | {np.mean([r['final_true_return'] for r in runs]):.0f} | "
                         f"{stage('reward_inference')} | {stage('reward_fit')} | {stage('reward_fit_background')} | "
                         f"{stage('store')} | {stage('policy_update')} | {stage('env')} |")
        return "\n".join(lines) + "\n"


def equal_load_ratio(learned: list[dict[str, Any]], true: list[dict[str, Any]], end: float) -> str:
    """Mean learned over mean true wall time at the largest step of the true runs' curves that every run of both
    reached (interpolated) before `end`, the first end of a run in their batch: "1.09 (900k)"; "–" without curves."""
    runs = learned + true
    if not all(r.get("wall_curve") for r in runs):
        return "–"
    curves = [np.asarray(r["wall_curve"], dtype=float) for r in runs]
    best = None
    for step in np.asarray(true[0]["wall_curve"], dtype=float)[:, 0]:
        if any(step > c[-1, 0] for c in curves):
            continue
        walls = [float(np.interp(step, c[:, 0], c[:, 1])) for c in curves]
        if max(walls) <= end:
            best = step, walls
    if best is None:
        return "–"
    step, walls = best
    ratio = np.mean(walls[:len(learned)]) / np.mean(walls[len(learned):])
    return f"{ratio:.2f} ({step / 1000:.0f}k)"


@dataclass(frozen=True)
class LlmTable(DocTable):
    """The LLM adapter's gain ratios (rows of scripts/benchmark_llm.py): per setting (task, RL steps, beta, label
    budget), a line per seed with the scores of the SFT model (base), the true-score arm, the learned arm and the
    control arm (random labels), and the gain ratios with their mean."""

    arms: tuple[str, ...] = ("learned", "shuffled")
    """The learned arm, then the control arm."""

    def render(self, root: Path) -> str:
        groups: dict[tuple[Any, ...], dict[tuple[str, int], dict[str, Any]]] = {}
        for name in self.rows:
            for row in read_llm_rows(root / name):
                setting = row["task"], row["steps"], row["beta"], row.get("budget", row["labels"])
                runs = groups.setdefault(setting, {})
                if (row["arm"], row["seed"]) in runs:
                    raise PrefrlError(f"{name}: {setting + (row['arm'], row['seed'])} (task, steps, beta, budget, "
                                      "arm, seed) appears twice: keep one row a run")
                runs[row["arm"], row["seed"]] = row
        learned_arm, control_arm = self.arms
        blocks = []
        for (task, steps, beta, budget), runs in sorted(groups.items(), key=lambda kv: str(kv[0])):
            lines = [f"*{task} task: {steps} RL steps in every arm, beta {beta}, at most {budget} labels*", "",
                     "| seed | base (SFT) | true-score arm | learned arm | labels | gain ratio | control arm | "
                     "control ratio |", "|---|---|---|---|---|---|---|---|"]
            ratios: dict[str, list[float]] = {learned_arm: [], control_arm: []}
            for seed in sorted({seed for _, seed in runs}):
                learned, control = runs.get((learned_arm, seed)), runs.get((control_arm, seed))
                first = learned or control
                assert first is not None
                cells = [str(seed), f"{first['base_score']:.3f}", f"{first['true_score']:.3f}"]
                for arm, r in ((learned_arm, learned), (control_arm, control)):
                    if r is not None:
                        ratios[arm].append(float(r["gain_ratio"]))
                    score = "" if r is None else f"{r['learned_score']:.3f}"
                    ratio = "" if r is None else f"{r['gain_ratio']:.2f}"
                    labels = [] if arm != learned_arm else ["" if r is None else str(r["labels"])]
                    cells += [score, *labels, ratio]
                lines.append("| " + " | ".join(cells) + " |")
            mean = {arm: f"**{np.mean(v):.2f}**" if v else "–" for arm, v in ratios.items()}
            lines.append(f"| mean | | | | | {mean[learned_arm]} | | {mean[control_arm]} |")
            blocks.append("\n".join(lines) + "\n")
        return "\n".join(blocks)


@dataclass(frozen=True)
class SuiteTable(DocTable):
    """The generality suite: a line per env (its budget, labels, seeds), the uniform-random policy's return, both
    arms' mean and IQM returns, and the random-normalised ratio of their means and of their IQMs. The arms are
    (true-reward arm, learned arm); `bar` bolds ratios that meet it."""

    bar: float = 0.8
    only: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(rows file, envs): take only these envs' rows from that file (its other envs are measured elsewhere)."""
    learned_only: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(rows file, envs): take the learned arm's rows from that file for these envs only (the true arm's for every
    env): the file's other learned rows were made by a default that has since changed where it matters."""
    same_as: tuple[tuple[str, str, str], ...] = ()
    """(rows file, arm, arm it counts as): runs of an arm whose configuration is what the named arm is today (made
    before a default changed to it)."""

    def render(self, root: Path) -> str:
        keep, keep_learned = dict(self.only), dict(self.learned_only)
        true_arm, learned_arm = self.arms
        renamed = {(name, arm): shown for name, arm, shown in self.same_as}
        rows = []
        for name in self.rows:
            for r in read_rows(root / name):
                r = {**r, "arm": renamed.get((name, r["arm"]), r["arm"])}
                if (name not in keep or r["env"] in keep[name]) and (
                        name not in keep_learned or r["arm"] != learned_arm or r["env"] in keep_learned[name]):
                    rows.append(r)
        lines = ["| env | steps | labels | seeds (true / learned) | random policy | true reward: mean (IQM) | "
                 "learned: mean (IQM) | normalised ratio of means | of IQMs |", "|---|---|---|---|---|---|---|---|---|"]
        envs = list(self.envs) or sorted({r["env"] for r in rows})
        for env in envs:
            true = [r for r in rows if r["env"] == env and r["arm"] == true_arm]
            learned = [r for r in rows if r["env"] == env and r["arm"] == learned_arm]
            if not true and not learned:
                continue
            randoms = [r["random_return"] for r in true + learned if r.get("random_return") is not None]
            rand = float(np.mean(randoms)) if randoms else None

            def returns(runs: list[dict[str, Any]]) -> tuple[float, float] | None:
                vals = [r["final_true_return"] for r in runs]
                return (float(np.mean(vals)), iqm(vals)) if vals else None

            t, lrn = returns(true), returns(learned)
            ratios = ["–", "–"]
            if t is not None and lrn is not None and rand is not None:
                for k in range(2):
                    v = normalised_ratio(lrn[k], t[k], rand)
                    ratios[k] = "–" if v is None else f"**{v:.2f}**" if round(v, 2) >= self.bar else f"{v:.2f}"
            steps = max(r["env_steps"] for r in true + learned)
            labels = f"{np.mean([r['labels'] for r in learned]):.0f}" if learned else "–"
            shown = ["–" if x is None else f"{x[0]:.0f} ({x[1]:.0f})" for x in (t, lrn)]
            lines.append(f"| {env} | {steps:,} | {labels} | {len(true)} / {len(learned)} | "
                         f"{'–' if rand is None else f'{rand:.0f}'} | {shown[0]} | {shown[1]} | {ratios[0]} | "
                         f"{ratios[1]} |")
        return "\n".join(lines) + "\n"


_1M = "docs/benchmark-results-1m-cpu.jsonl"
_SOONER = "docs/benchmark-results-1m-sooner-cpu.jsonl"
_COST_1M = "docs/benchmark-results-cost-1m-cpu.jsonl"
_COST_1M_S17 = "docs/benchmark-results-cost-1m-s17-cpu.jsonl"
_SOONER_S17 = "docs/benchmark-results-1m-sooner-s17-cpu.jsonl"
_COST_1M_S18 = "docs/benchmark-results-cost-1m-s18-cpu.jsonl"
_SUITE_S18 = "docs/benchmark-results-suite-s18-cpu.jsonl"
_SUITE_S19 = "docs/benchmark-results-suite-s19-cpu.jsonl"
_ANT_S20 = "docs/benchmark-results-ant-s20-cpu.jsonl"
_SUITE_S20 = "docs/benchmark-results-suite-s20-cpu.jsonl"
_COST_1M_S21 = "docs/benchmark-results-cost-1m-s21-cpu.jsonl"
_ANT_S21 = "docs/benchmark-results-ant-s21-cpu.jsonl"
_SQUARES_S22 = "docs/benchmark-results-squares-s22-cpu.jsonl"
_IP_S22 = "docs/benchmark-results-ip-s22-cpu.jsonl"
_IP_S23 = "docs/benchmark-results-ip-s23-cpu.jsonl"
_HC_S23 = "docs/benchmark-results-hc-s23-cpu.jsonl"
_LINSQ_ANT_S23 = "docs/benchmark-results-linsquares-ant-s23-cpu.jsonl"
_LINSQ_HC_S23 = "docs/benchmark-results-linsquares-hc-s23-cpu.jsonl"
_LINSQ_WALKER_S23 = "docs/benchmark-results-linsquares-walker-s23-cpu.jsonl"
_LINSQ_HR_S25 = "docs/benchmark-results-linsquares-hr-s25-cpu.jsonl"
_LINSQ_WALKER_S25 = "docs/benchmark-results-linsquares-walker-s25-cpu.jsonl"
_NOT_ANT = tuple(e for e in SUITES["mujoco"].steps if e != "Ant-v5")
_150K = ("docs/benchmark-results-halfcheetah.jsonl", "docs/benchmark-results-hopper-walker.jsonl",
         "docs/benchmark-results-selection.jsonl")

DOC_TABLES = {
    "ratios-1m": DocTable((_1M, _SOONER), ("oracle-700", "oracle-350", "mistake-700", "oracle-700-decay0.02"),
                          kind="ratios"),
    "results-1m": DocTable((_1M,), ("true", "oracle-700")),
    "sooner-1m": DocTable((_1M, _SOONER), ("oracle-700", "oracle-700-decay0.02"), envs=("Hopper-v5", "Walker2d-v5")),
    "arms-1m": DocTable((_1M,), ("oracle-350", "mistake-700")),
    "results-500k": DocTable(("docs/benchmark-results-500k-gpu.jsonl",), ("true", "oracle-700")),
    "results-150k": DocTable(_150K, ("true", "oracle-700", "oracle-350", "mistake-700", "oracle-700-disagreement")),
    "llm-letters": LlmTable(("docs/benchmark-results-llm.jsonl",)),
    "cost-300k": CostTable(("docs/benchmark-results-cost-cpu.jsonl",), ()),
    "suite-mujoco": SuiteTable((_SUITE_S18, _COST_1M_S21, _SUITE_S20, _ANT_S21, _SQUARES_S22, _IP_S22, _HC_S23),
                               ("true", "oracle-700"),
                               envs=tuple(SUITES["mujoco"].steps), only=((_SUITE_S20, _NOT_ANT),),
                               learned_only=((_SUITE_S18, ()),)),
    "suite-mujoco-s20": SuiteTable((_COST_1M_S18, _SUITE_S18, _SUITE_S19, _ANT_S20, _SUITE_S20),
                                   ("true", "oracle-700"), envs=tuple(SUITES["mujoco"].steps),
                                   learned_only=((_COST_1M_S18, ()), (_SUITE_S18, ()), (_SUITE_S19, ())),
                                   same_as=((_ANT_S20, "oracle-700-squares", "oracle-700"),)),
    "suite-mujoco-s19": SuiteTable((_COST_1M_S18, _SUITE_S18, _SUITE_S19), ("true", "oracle-700"),
                                   envs=tuple(SUITES["mujoco"].steps)),
    "suite-mujoco-decay0.25": SuiteTable(("docs/benchmark-results-suite-cpu.jsonl", _1M, _COST_1M_S17),
                                         ("true", "oracle-700"), envs=tuple(SUITES["mujoco"].steps),
                                         only=((_1M, ("HalfCheetah-v5",)),)),
    "cost-1m": CostTable((_COST_1M,), ()),
    "results-cost-1m": DocTable((_COST_1M,), ("true", "oracle-700")),
    "cost-1m-s17": CostTable((_COST_1M_S17,), ()),
    "results-cost-1m-s17": DocTable((_COST_1M_S17,), ("true", "oracle-700")),
    "sooner-1m-s17": DocTable((_COST_1M_S17, _SOONER_S17), ("true", "oracle-700", "oracle-700-decay0.02"),
                              envs=("Hopper-v5", "Walker2d-v5")),
    "cost-1m-s18": CostTable((_COST_1M_S18,), ()),
    "results-cost-1m-s18": DocTable((_COST_1M_S18,), ("true", "oracle-700")),
    "cost-1m-s21": CostTable((_COST_1M_S21,), ()),
    "results-cost-1m-s21": DocTable((_COST_1M_S21,), ("true", "oracle-700")),
    "fit-cores": CostTable(("docs/benchmark-results-fit-cores-cpu.jsonl",), ()),
    "cost-pong-500k": CostTable(("docs/benchmark-results-pong-500k-cpu.jsonl",), ()),
    "ant-squares": DocTable((_SUITE_S19, _ANT_S20),
                            ("true", "oracle-700", "oracle-700-squares", "oracle-700-squares-cap"), envs=("Ant-v5",)),
    "results-ant-s21": DocTable((_ANT_S21,), ("true", "oracle-700")),
    "squares-halfcheetah": DocTable((_COST_1M_S21, _SQUARES_S22), ("true", "oracle-700", "oracle-700-nosquares"),
                                    envs=("HalfCheetah-v5",)),
    "squares-invertedpendulum": DocTable((_IP_S22,), ("true", "oracle-700", "oracle-700-nosquares"),
                                         envs=("InvertedPendulum-v5",)),
    "linsquares-invertedpendulum": DocTable((_IP_S22, _IP_S23), ("true", "oracle-700", "oracle-700-nosquares",
                                                                 "oracle-700-linsquares"),
                                            envs=("InvertedPendulum-v5",)),
    "linsquares-mujoco": DocTable((_HC_S23, _LINSQ_HC_S23, _ANT_S21, _LINSQ_ANT_S23),
                                  ("true", "oracle-700", "oracle-700-linsquares"), envs=("HalfCheetah-v5", "Ant-v5")),
    "linsquares-walker2d": DocTable((_COST_1M_S21, _LINSQ_WALKER_S23), ("true", "oracle-700", "oracle-700-linsquares"),
                                    envs=("Walker2d-v5",)),
    "linsquares-hopper": DocTable((_COST_1M_S21, _LINSQ_HR_S25), ("true", "oracle-700", "oracle-700-linsquares"),
                                  envs=("Hopper-v5",)),
    "linsquares-walker2d-s25": DocTable((_COST_1M_S21, _LINSQ_WALKER_S23, _LINSQ_WALKER_S25),
                                        ("true", "oracle-700", "oracle-700-linsquares"), envs=("Walker2d-v5",)),
    "hopper-fit-ab": DocTable(("docs/benchmark-results-hopper-fit-ab-cpu.jsonl",),
                              ("oracle-700", "oracle-700-fitall", "oracle-700-sync-fitall")),
    "backflip-reference-s31": DocTable(("docs/benchmark-results-backflip-s31-cpu.jsonl",),
                                       ("true-reference50-landed40-cut200", "true-reference50-oneflip-landed40-cut200",
                                        "mistake-1000-disagreement-paced3s-reference50-landed40-cut200-1M",
                                        "mistake-1000-disagreement-paced3s-preferred50-flight50-landed40-cut200-1M")),
    "backflip-no-agent-s32": DocTable(("docs/benchmark-results-backflip-s32-cpu.jsonl",),
                                      ("true-openloop-reference50-landed40-cut200",
                                       "true-own50-flight50-landed40-cut200",
                                       "true-openloop-reference50-own50-landed40-cut200",
                                       "mistake-1000-disagreement-paced3s-openloop-reference50-landed40-cut200-1M",
                                       "mistake-1000-disagreement-paced3s-own50-flight50-landed40-cut200-1M")),
    "backflip-search-air-s33": DocTable(("docs/benchmark-results-backflip-s33-cpu.jsonl",),
                                        ("true-searchair-reference50-landed40-cut200",
                                         "true-searchland-reference50-landed40-cut200",
                                         "mistake-1000-disagreement-paced3s-searchair-reference50-landed40-cut200-1M")),
    "backflip-chains-s34": DocTable(("docs/benchmark-results-backflip-s34-cpu.jsonl",),
                                    ("mistake-1000-disagreement-paced3s-chainref-reference50-landed40-cut200-1M",
                                     "fixedlearned-ownpaced1000-learnedsearch-reference50-landed40-cut200")),
    "backflip-s35": DocTable(("docs/benchmark-results-backflip-s35-cpu.jsonl",),
                             ("mistake-500-imported500-disagreement-paced3s-labelsplit-reference50-landed40-cut200-725k",
                              "mistake-1000-disagreement-paced3s-reference50-landed40-cut200-1M")),
    "backflip-s36": DocTable(("docs/benchmark-results-backflip-s36-cpu.jsonl",),
                             ("mistake-1000-disagreement-paced3s-reference50-landed40-cut200-1M",
                              "mistake-1000-disagreement-paced3s-clip0.8s-reference50-landed40-cut200-1M",
                              "fixedlearned-chainpaced1000-chainref-reference50-landed40-cut200",
                              "fixedlearned-refpaced1000-reference50-landed40-cut200-stopped409k")),
    "backflip-s37": DocTable(("docs/benchmark-results-backflip-s37-cpu.jsonl",),
                             ("fixedlearned-refpaced1000-reference50-landed40-cut200",
                              "fixedlearned-refpaced1000-reference50-landed40-cut200-pposeedplus100",
                              "mistake-1000-disagreement-paced3s-reference50-landed40-cut200-1M",
                              "retrain600k-mistake-1000-disagreement-paced3s-reference50-landed40-cut200-1M")),
}
"""Every generated table of docs/benchmarks.md, by the NAME of its `<!-- table: NAME ... -->` marker."""

_TABLE = re.compile(r"^<!-- table: (?P<name>[\w.-]+)(?: [^\n]*)? -->\n.*?^<!-- /table -->\n", re.S | re.M)


def update_doc_tables(doc: Path, root: Path, check: bool = False,
                      tables: dict[str, DocTable] | None = None) -> list[str]:
    """Regenerate the tables of `doc` from their rows (paths relative to `root`): what lies between each
    `<!-- table: NAME (...) -->` line and the next `<!-- /table -->` line is replaced by table NAME of `tables`
    (default DOC_TABLES), and the prose around them is kept. Returns the names of the tables that were out of
    date; with `check` the doc is only compared, not written."""
    tables = DOC_TABLES if tables is None else tables
    if not doc.is_file():
        raise PrefrlError(f"{doc}: no such document: give the markdown file whose tables to regenerate (--doc)")
    text = doc.read_text()
    found = [m.group("name") for m in _TABLE.finditer(text)]
    if len(re.findall(r"^<!-- table: ", text, re.M)) != len(found):
        raise PrefrlError(f"{doc}: a `<!-- table: NAME ... -->` marker without its `<!-- /table -->` line")
    unknown, missing = set(found) - set(tables), set(tables) - set(found)
    if unknown or missing:
        raise PrefrlError(f"{doc}: tables {sorted(unknown)} are not among the generated ones and "
                          f"{sorted(missing)} have no marker: the markers and DOC_TABLES "
                          "(prefrl/interfaces/doc_tables.py) must name the same tables")
    stale: list[str] = []

    def generate(m: re.Match[str]) -> str:
        name = m.group("name")
        spec = tables[name]
        block = (f"<!-- table: {name} (generated by scripts/benchmark_tables.py from {', '.join(spec.rows)}) -->\n"
                 f"{spec.render(root)}<!-- /table -->\n")
        if block != m.group(0):
            stale.append(name)
        return block

    new = _TABLE.sub(generate, text)
    if stale and not check:
        doc.write_text(new)
    return stale
