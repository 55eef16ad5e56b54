"""The one task distance of the recommender (warm start, ranker, knowledge base)."""

import numpy as np
import pytest

from archsearch.recommend import FamilyScoreRegressor, meta_vector, task_distance
from archsearch.recommend.similarity import KIND_GAP, MISSING_GAP, pairwise_distances

BASE = {"task": "regression", "seq_len": 100, "n_features": 2, "n_sequences": 1000}


def test_distance_is_in_decades_of_length_and_symmetric():
    longer = {**BASE, "seq_len": 1000}
    assert task_distance(BASE, longer) == pytest.approx(1.0)
    assert task_distance(longer, BASE) == task_distance(BASE, longer)
    assert task_distance(BASE, {**BASE, "seq_len": 10}) == pytest.approx(1.0)
    assert task_distance(BASE, BASE) == 0.0


def test_other_kinds_are_a_fixed_gap_apart_and_missing_values_cost_a_fixed_share():
    assert task_distance(BASE, {**BASE, "task": "forecast"}) == pytest.approx(KIND_GAP)
    with_acf = {**BASE, "acf_lag1": 0.9}
    assert task_distance(BASE, with_acf) == pytest.approx(0.5 * MISSING_GAP)
    assert task_distance(with_acf, {**with_acf, "acf_lag1": 0.1}) == pytest.approx(0.5 * 0.8)


def test_the_ranker_neighbours_follow_the_same_distance():
    rows = np.stack([meta_vector({**BASE, "seq_len": n}) for n in (20, 90, 400, 5000)]
                    + [meta_vector({**BASE, "task": "classification"})])
    model = FamilyScoreRegressor(n_neighbors=2).fit(rows, np.eye(5)[:, :2])
    distances, order = model.kneighbors(meta_vector(BASE)[None, :], 5)
    # The task of another kind sits as far as a tenfold length: after 20 steps, before 5000.
    assert order[0].tolist() == [1, 2, 0, 4, 3]
    assert distances[0] == pytest.approx(np.sort(pairwise_distances(meta_vector(BASE), rows)[0]))
