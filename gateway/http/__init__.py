"""The HTTP edge: where a request comes in and its answer goes out.

``app.create_app`` is the one composition root (every concrete class of every wing is
chosen there, and tests build the app with the same factory); ``routes`` is the URL
map; ``middleware/`` runs on every request in order (request facts and the log line,
errors as problem+json, the body limit, authentication, caller rate limits);
``handlers/`` parse a request, call ``jobs.JobService`` and render its answer with
``api``; ``keys`` holds every typed app and request key. Only this wing imports
``aiohttp.web``. It may import every other wing; nothing imports it but ``cli`` and
``demo``.
"""
