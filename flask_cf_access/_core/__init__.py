"""The verification core: tokens, keys, claims, identities, rules and refusals.

Nothing here imports Flask (``tests/test_layout.py`` checks it by path): the
Flask layer (``_flask``) and the WSGI middleware (``_wsgi``) both stand on it.
"""
