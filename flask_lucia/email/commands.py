"""``flask lucia send-reset EMAIL``: mail a user a password reset link (DESIGN §13)."""

from __future__ import annotations

import click
from flask import current_app

from flask_lucia.core.store.schema import EMAIL_PROVIDER
from flask_lucia.mail import NOT_SENT, MailError
from flask_lucia.web.base import state
from flask_lucia.web.commands import failures, lucia_cli


@lucia_cli.command("send-reset")
@click.argument("email")
def send_reset(email: str) -> None:
    """Mail the user with EMAIL a password reset link (LUCIA_BASE_URL builds the link)."""
    auth = state()
    if auth.settings.base_url is None and not current_app.config.get("SERVER_NAME"):
        raise click.ClickException(
            "set LUCIA_BASE_URL (or SERVER_NAME and PREFERRED_URL_SCHEME) so the link in "
            "the mail can be built"
        )
    with failures():
        emails = current_app.extensions["lucia_email"]
        address = emails.key(email).partition(":")[2]
        user_id = emails.store.owner(f"{EMAIL_PROVIDER}:{address}")
    if user_id is None:
        raise click.ClickException(f"no user has the email {address}")
    try:
        with failures():
            emails.send_reset(user_id, address)
    except MailError as error:
        raise click.ClickException(f"{NOT_SENT} ({error})") from error
    click.echo(f"sent a password reset link to {address}")
