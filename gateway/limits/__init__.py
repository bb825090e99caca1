"""How much anyone may do: callers of the gateway, and the gateway of each provider.

``gcra`` is the rate algorithm (in Python and in the Lua script Redis runs);
``buckets`` stores GCRA buckets in this process or in Redis; ``ratelimit`` decides
each request's caller limits (per key and per tenant) and what happens when Redis
fails; ``job_limits`` counts unfinished jobs and jobs per day; ``pacing`` spaces every
replica's calls to one provider account; ``shared_breaker`` shares a provider account's
circuit breaker and its one probe between the replicas (its Redis record:
``breaker_record``); ``provider_resilience`` holds the pacing,
circuit breaker and retry budget settings of a provider and builds the objects its
``Upstream`` holds; ``auth_failures`` keeps failed authentications in Redis (the limit
itself is ``gateway.auth.failed_auth``). ``settings`` is this wing's configuration
section. May import ``state`` (Redis plumbing: keys, the batcher, its errors), ``auth``
(the ``Principal``, the failed-auth port), ``config`` and the kernel; never ``jobs``,
``api`` or ``http``.
"""
