"""Request middlewares: context and logging, errors as problem+json, authentication."""
