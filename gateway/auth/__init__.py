"""Who is calling, and whom the gateway may call on a caller's behalf.

``principals`` resolves a bearer credential (an API key, or a JWT through
``jwt_auth`` and ``jwks``) to a ``Principal``: tenant, key id, scopes, allowed models;
``failed_auth`` limits failed attempts per client address; ``urlguard`` checks every
URL the gateway itself would fetch for a caller. ``settings`` is this wing's
configuration section (API keys, JWT keys, trusted proxies, the URL guard). May import
``config`` and the kernel only.
"""
