"""The inference jobs gateway.

A request's path: ``http`` (middleware, then a handler) → ``jobs`` (``JobService``) →
``adapters`` (the provider's adapter, over its ``Upstream``) → the provider.

The wings, from the edge inward; each imports only wings below it (the import
contracts in ``pyproject.toml`` check it in ``make test``):

* ``cli``, ``demo``, ``simulators``: the commands and what only they run;
* ``http``: ``create_app`` (the composition root), routes, handlers, middleware;
* ``jobs``: ``JobService``, the model catalog, coalescing;
* ``api``: the v1 contract's models, views, result formats, OpenAPI;
* ``limits``: caller limits, job limits, provider pacing and resilience;
* ``state``: job records, results, idempotency keys, in memory or in Redis;
* ``auth``: principals, API keys, JWTs, the URL guard;
* ``observability``: metrics, logs, request facts;
* ``config``: settings, assembled from each wing's own section;
* the kernel: ``errors`` (the error tree), ``clock``, ``tasks``.
"""
