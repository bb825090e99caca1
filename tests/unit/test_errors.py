"""The error tree: who is at fault, and one base for the gateway's and the providers' errors."""

from __future__ import annotations

from gateway.errors import Forbidden, GatewayError, NotFound, RequestRejected, Unauthenticated


class TestErrorTree:
    def test_caller_errors_are_request_rejected(self):
        for cls in (Unauthenticated, Forbidden, NotFound):
            assert issubclass(cls, RequestRejected)
            assert 400 <= cls.status < 500

    def test_provider_errors_render_through_the_same_base(self):
        from adapters.errors import ProviderError

        assert issubclass(ProviderError, GatewayError)
