"""The fallback's order of targets: configured, or one drawn by weight first."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from adapters.base import ModelRef
from gateway.jobs.catalog import Target
from gateway.jobs.fallback import first_choice


def target(provider: str, weight: float | None) -> Target:
    return Target(ModelRef(provider, "m", None), (f"{provider}/m",), "json", weight)


class TestFirstChoice:
    def test_an_unweighted_chain_keeps_its_order(self):
        chain = [target("a", None), target("b", None), target("c", None)]
        assert first_choice(chain, random.Random(1)) == chain

    @pytest.mark.parametrize(
        "weights", [(3, 1), (1, 1), (1, 2, 1)], ids=["75-25", "50-50", "25-50-25"]
    )
    def test_a_weighted_chain_splits_first_attempts_by_weight(self, weights):
        """2,000 submits land on each target within 5 % of its share."""
        chain = [target(f"p{i}", w) for i, w in enumerate(weights)]
        rng = random.Random(20261203)
        firsts = Counter(first_choice(chain, rng)[0].ref.provider for _ in range(2000))
        for i, w in enumerate(weights):
            share = w / sum(weights)
            assert abs(firsts[f"p{i}"] / 2000 - share) <= 0.05 * share, (firsts, share)

    def test_the_others_follow_the_first_in_configured_order(self):
        chain = [target("a", 1), target("b", 1), target("c", 1)]
        for seed in range(20):
            order = first_choice(chain, random.Random(seed))
            rest = [t for t in chain if t != order[0]]
            assert order[1:] == rest

    def test_a_weight_of_zero_is_never_first_but_still_a_fallback(self):
        chain = [target("a", 0), target("b", 1)]
        orders = {
            tuple(t.ref.provider for t in first_choice(chain, random.Random(s))) for s in range(50)
        }
        assert orders == {("b", "a")}
