"""The configuration, read once into frozen settings.

``settings`` assembles the root ``Settings`` from each wing's own section (``auth``,
``limits``, ``observability`` and ``state`` each own a ``settings`` module) plus the
sections of the gateway as a whole (providers and their models, aliases, the server);
``loading`` reads a YAML file, the environment and credentials into it; ``checks``
finds what no single field shows (names, references, credentials) so one run reports
every problem. It imports the wings' settings modules and nothing else of them; every
wing may import it.
"""
