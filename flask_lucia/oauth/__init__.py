"""Sign in with GitHub, Google or any OpenID Connect provider, through Authlib (DESIGN §14)."""
