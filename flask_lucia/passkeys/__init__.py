"""Passkeys (WebAuthn, DESIGN §15): register, sign in (a whole sign-in: it counts as MFA),
manage."""
