"""What the gateway does with jobs: submit, read, wait for, list, cancel, fetch results.

``service.JobService`` is the one place those rules live (tenancy, reuse of finished
answers, freshness of running ones, job limits, idempotency); ``catalog`` turns a
``model`` a caller wrote into a provider's model (or an alias's chain of them), and
``fallback`` sends a submit to the first of the chain that takes it; ``coalesce`` makes
concurrent reads of one job share one provider call, across replicas. It calls providers
only through their adapters (``adapters.base.ProviderAdapter``). May import ``api``,
``limits``, ``state``, ``auth`` (the ``Principal``), ``observability``, ``config`` and the
kernel (``errors``, ``clock``, ``tasks``); never ``http``.
"""
