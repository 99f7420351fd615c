"""Ranking mode's data side: which clips to rank together, a ranking as pairwise labels, Bradley-Terry scores.

A ranking of k clips (best first) is stored as its k(k-1)/2 comparisons, as InstructGPT does with its rankings of
k completions: an open query between two of the clips is answered, any other pair gets a new query (default origin,
so it counts among the questions asked) answered at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from prefrl.core.data import Answer
from prefrl.core.store import Store

Comparison = tuple[int, int, float]
"""(clip a, clip b, probability that a is the better): 1 a won, 0 b won, 0.5 equally good."""


def bradley_terry(comparisons: Iterable[Comparison], iters: int = 100, prior: float = 0.5) -> dict[int, float]:
    """Bradley-Terry log-strengths of every clip in `comparisons`, fitted by minorise-maximise (Hunter, 2004).

    Each clip also plays `prior` won and `prior` lost games against a fixed clip of strength 1, which keeps a clip
    that never lost finite and pulls clips with few comparisons towards 0. P(a beats b) = sigmoid(s_a - s_b).

    Example:
        >>> s = bradley_terry([(1, 2, 1.0), (2, 3, 1.0)])
        >>> s[1] > s[2] > s[3]
        True
    """
    wins: dict[int, float] = {}
    games: dict[tuple[int, int], float] = {}
    for a, b, p in comparisons:
        if a == b:
            continue
        wins[a] = wins.get(a, 0.0) + p
        wins[b] = wins.get(b, 0.0) + 1.0 - p
        key = (min(a, b), max(a, b))
        games[key] = games.get(key, 0.0) + 1.0
    strength = dict.fromkeys(wins, 1.0)
    for _ in range(iters):
        denom = {c: 2 * prior / (strength[c] + 1.0) for c in strength}
        for (a, b), n in games.items():
            d = n / (strength[a] + strength[b])
            denom[a] += d
            denom[b] += d
        strength = {c: (wins[c] + prior) / denom[c] for c in strength}
    return {c: math.log(s) for c, s in strength.items()}


def elo(score: float) -> float:
    """A Bradley-Terry log-strength on the Elo scale (1500 = the prior's reference clip)."""
    return 1500.0 + 400.0 * score / math.log(10.0)


def store_comparisons(store: Store, clips: Iterable[int] | None = None) -> list[Comparison]:
    """The comparisons of every standing label (skips left out); with `clips`, only those involving one of them."""
    wanted = None if clips is None else set(clips)
    out = []
    for q, label in store.labelled_pairs():
        target = label.answer.target
        if target is None or (wanted is not None and not {q.left_id, q.right_id} & wanted):
            continue
        out.append((q.left_id, q.right_id, target))
    return out


def ranking_pairs(order: Sequence[int]) -> list[tuple[int, int]]:
    """(better, worse) for every pair of a ranking given best first: k(k-1)/2 of them."""
    return [(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))]


def save_ranking(store: Store, order: Sequence[int], labeler: str, shown: float | None = None) -> int:
    """Store a ranking (clip ids, best first) as labels; returns how many labels it added."""
    open_ = {(q.left_id, q.right_id): q.id for q in store.pending_queries()}
    added = 0
    for better, worse in ranking_pairs(order):
        if (better, worse) in open_:
            qid, answer = open_[(better, worse)], Answer.LEFT
        elif (worse, better) in open_:
            qid, answer = open_[(worse, better)], Answer.RIGHT
        else:  # a new comparison: the lower id on the left, so a ranking puts no side first
            left, right = sorted((better, worse))
            env_step = max(store.clip(left).env_step, store.clip(right).env_step)
            qid = store.add_query(left, right, env_step=env_step)
            answer = Answer.LEFT if left == better else Answer.RIGHT
        store.add_label(qid, answer, labeler, shown=shown)
        added += 1
    return added


def ranking_set(store: Store, k: int, text: bool, scan: int = 50) -> list[int]:
    """Up to `k` clips of open queries to rank together, the oldest query's first (so every ranking answers at
    least that query). Text clips: only completions of the oldest open query's prompt."""
    ids: list[int] = []
    prompt: str | None = None
    for q in store.pending_queries(limit=scan):
        for cid in (q.left_id, q.right_id):
            if cid in ids:
                continue
            if text:
                p = store.clip(cid).prompt
                if prompt is None:
                    prompt = p
                elif p != prompt:
                    continue
            ids.append(cid)
        if len(ids) >= k:
            break
    return ids[:k]
