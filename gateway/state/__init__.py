"""Where shared state lives: in this process, or in Redis for every replica.

Each store is a port with an in-memory and a Redis implementation side by side,
passing one contract suite: ``store`` (job records; ``redis_store``), ``cache``
(results, and the freshness of a running job's status), ``idempotency`` (keys of
submits); ``codec`` writes records and results as JSON. The Redis plumbing is here
too: ``backends`` chooses memory or Redis and builds the one client (standalone,
``redis_cluster``, or the master a Sentinel names, ``redis_url``); ``redis_batch``
lets concurrent requests share trips; ``keyspace`` names every key the gateway writes;
``redis_observed`` meters each component. ``settings`` is the ``redis`` section. May
import ``observability``, ``config`` and the kernel; the wings above build their own
shared parts (leases, limit buckets) on this wing's client.
"""
