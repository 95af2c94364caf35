"""``flask lucia reset-two-factor USER``: support staff remove the second factors of a user
who lost them (DESIGN §15)."""

from __future__ import annotations

import click

from flask_lucia.mfa.views import mfa_state
from flask_lucia.web.base import state
from flask_lucia.web.commands import failures, find_user, lucia_cli


@lucia_cli.command("reset-two-factor")
@click.argument("user")
def reset_two_factor(user: str) -> None:
    """Remove USER's second factors (TOTP, recovery codes, passkeys) after they lost them."""
    auth = state()
    with failures():
        found = find_user(auth, user)
        was_on, passkeys = mfa_state().reset(found)
    totp_done = "turned off TOTP and deleted its recovery codes" if was_on else "TOTP was off"
    click.echo(f"user {auth.users.id_of(found)}: {totp_done}; deleted {passkeys} passkey(s)")
