"""The core: users and keys, sessions and refresh, passwords, tokens, throttle, pending
sign-ins, and the store. It reads no Flask request global and imports no ``web`` or feature
module; features register with it at ``init_app`` (docs/architecture.rst)."""
