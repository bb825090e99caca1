"""The v1 contract as code (``../shared/API.md``): what callers send and what they get back.

``models`` are the request and answer bodies as pydantic classes; ``views`` turn job
records and results into answers; ``formats`` write results as CSV and NDJSON;
``openapi`` builds ``/openapi.json`` from the same models, so the document cannot
drift from what is served. Used by ``http`` to parse and render and by ``jobs`` (a
submit's body is the service's input). May import ``state`` (the records it renders),
``errors`` and the adapters' normalized types; never ``http`` or ``jobs``.
"""
