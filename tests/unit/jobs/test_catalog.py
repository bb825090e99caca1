"""The model catalog: aliases, versions from the configuration, unknown models."""

from __future__ import annotations

import pytest

from adapters.base import ModelRef
from gateway.errors import NotFound
from gateway.jobs.catalog import ModelCatalog
from tests.conftest import make_settings, provider_settings


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
