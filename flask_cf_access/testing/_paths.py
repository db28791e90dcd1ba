"""Where a stand-in team answers: the paths Cloudflare Access serves, and minting's."""

CERTS_PATH = "/cdn-cgi/access/certs"
IDENTITY_PATH = "/cdn-cgi/access/get-identity"
#: Where a :class:`StandInServer` started with ``minting=True`` mints tokens,
#: under a random secret: ``/__stand-in__/<secret>/tokens``.
MINT_PREFIX = "/__stand-in__/"
