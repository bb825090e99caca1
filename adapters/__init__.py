"""Provider adapters: one package per provider type, over one shared Upstream."""
