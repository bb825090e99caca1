"""What the gateway tells its operators: metrics, logs, and the facts of each request.

``metrics`` defines every Prometheus metric on a registry the app owns; ``logging``
sets up structlog (JSON for ``serve``, console lines for ``demo``); ``context`` carries
one request's facts (provider time, cache use, limits) from the services to the
response headers and the canonical log line; ``loop_lag`` measures how late the event
loop wakes. ``settings`` is this wing's configuration section (log format, which
tenants metrics may name). May import ``config`` and the kernel only (and the
adapters' types a metric is labelled by).
"""
