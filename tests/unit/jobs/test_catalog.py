"""The model catalog: aliases, versions from the configuration, unknown models."""

from __future__ import annotations

import pytest

from adapters.base import ModelRef
from gateway.errors import NotFound
from gateway.jobs.catalog import ModelCatalog
from tests.conftest import SIM_MODELS, make_settings, provider_settings


class TestCatalog:
    catalog = ModelCatalog(
        make_settings([provider_settings("modzy", "modzy", "http://127.0.0.1:1/api")])
    )

    def test_alias(self):
        r = self.catalog.resolve("sentiment")
        assert r.ref == ModelRef("modzy", "ed542963de", "1.0.1")
        assert "sentiment" in r.names

    def test_version_filled_from_configuration(self):
        assert self.catalog.resolve("modzy/ed542963de").ref.version == "1.0.1"

    @pytest.mark.parametrize(
        "name",
        ["nope/x", "modzy/unknown", "modzy/ed542963de@9.9.9", "no-slash"],
        ids=["provider", "model", "version", "malformed"],
    )
    def test_unknown_is_not_found(self, name):
        with pytest.raises(NotFound):
            self.catalog.resolve(name)


class TestChains:
    catalog = ModelCatalog(
        make_settings(
            [
                provider_settings("modzy", "modzy", "http://127.0.0.1:1/api"),
                provider_settings("modzy-us", "modzy", "http://127.0.0.1:2/api"),
            ],
            aliases={"sentiment": ["modzy/ed542963de@1.0.1", "modzy-us/ed542963de"]},
        )
    )

    def test_an_alias_resolves_to_every_target_in_order(self):
        r = self.catalog.resolve("sentiment")
        assert [t.ref for t in r.targets] == [
            ModelRef("modzy", "ed542963de", "1.0.1"),
            ModelRef("modzy-us", "ed542963de", "1.0.1"),
        ]
        assert (r.alias, r.ref) == ("sentiment", r.targets[0].ref)

    def test_an_allow_list_grants_a_target_by_the_alias_or_its_own_names(self):
        r = self.catalog.resolve("sentiment")
        assert "sentiment" in r.names_of(r.targets[1])
        assert "modzy-us/ed542963de" in r.names_of(r.targets[1])
        assert "modzy/ed542963de" not in r.names_of(r.targets[1])

    def test_a_model_named_directly_is_a_chain_of_one_without_alias(self):
        r = self.catalog.resolve("modzy-us/ed542963de")
        assert (r.alias, len(r.targets)) == (None, 1)
        assert r.names_of(r.targets[0]) == r.names

    def test_every_model_of_a_chain_lists_the_alias(self):
        model = SIM_MODELS["modzy"][0]
        assert self.catalog.aliases_of("modzy-us", model) == ["sentiment"]


class TestAliasCache:
    """An alias written in full may have an item cache of its own: it holds for every
    target of the alias, and for nothing named directly."""

    catalog = ModelCatalog(
        make_settings(
            [
                provider_settings("modzy", "modzy", "http://127.0.0.1:1/api"),
                provider_settings("modzy-us", "modzy", "http://127.0.0.1:2/api"),
            ],
            aliases={
                "cached": {
                    "targets": ["modzy/ed542963de@1.0.1", "modzy-us/ed542963de"],
                    "cache": {"items": True, "ttl_seconds": 60, "scope": "global"},
                },
                "plain": ["modzy/ed542963de@1.0.1", "modzy-us/ed542963de"],
            },
        )
    )

    def test_every_target_of_the_alias_uses_the_alias_cache(self):
        r = self.catalog.resolve("cached")
        assert [(t.cache.items, t.cache.ttl_seconds, t.cache.scope) for t in r.targets] == [
            (True, 60, "global")
        ] * 2
        assert r.cache_of(ModelRef("modzy-us", "ed542963de", "1.0.1")).ttl_seconds == 60

    def test_the_same_models_named_directly_or_by_another_alias_keep_their_own(self):
        assert not self.catalog.resolve("modzy/ed542963de").cache.items
        assert not any(t.cache.items for t in self.catalog.resolve("plain").targets)

    def test_a_finished_jobs_cache_is_found_by_its_alias_and_target(self):
        assert self.catalog.cache_of("cached", "modzy-us/ed542963de@1.0.1").ttl_seconds == 60
        assert not self.catalog.cache_of(None, "modzy-us/ed542963de@1.0.1").items
        # An alias since removed, or no longer naming the target: the model's own.
        assert not self.catalog.cache_of("gone", "modzy/ed542963de@1.0.1").items
