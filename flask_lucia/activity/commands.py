"""``flask lucia activity USER``: a user's security events for support staff (DESIGN §20)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click
from flask import current_app

from flask_lucia.core.clock import now_ms
from flask_lucia.web.base import state
from flask_lucia.web.commands import failures, find_user, lucia_cli, when

_UNITS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _since(raw: str | None) -> int | None:
    """``--since``: a date or time (``2024-06-01``, ``2024-06-01T14:00``, UTC unless it
    says otherwise) or an age (``30m``, ``12h``, ``7d``), as unix ms."""
    if raw is None:
        return None
    value = raw.strip()
    if value[:-1].isdigit() and value[-1:] in _UNITS:
        return now_ms() - int(value[:-1]) * _UNITS[value[-1]]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{raw!r} is not a date (2024-06-01) or an age (30m, 12h, 7d)", param_hint="'--since'"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


@lucia_cli.command("activity")
@click.argument("user")
@click.option("--kind", "kinds", multiple=True, help="Only this kind (sign_in ...); repeatable.")
@click.option("--since", help="From this date or age on: 2024-06-01, 12h, 7d.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
def activity(user: str, kinds: tuple[str, ...], since: str | None, limit: int) -> None:
    """List USER's security events, newest first (also a deleted account's, by its id)."""
    auth = state()
    start = _since(since)
    store = current_app.extensions["lucia_activity"]
    unknown = sorted(set(kinds) - set(store.kinds))
    if unknown:
        raise click.BadParameter(
            f"unknown kind {unknown[0]!r}; one of: {', '.join(store.kinds)}", param_hint="'--kind'"
        )
    with failures():
        try:
            user_id = auth.users.id_of(find_user(auth, user))
        except click.ClickException:  # a deleted account keeps its account_deleted event
            user_id = auth.users.check_id(user)
            if not store.recent(user_id, limit=1, hidden=()):
                raise
        found = store.recent(user_id, limit=limit, since=start, kinds=kinds, hidden=())
    if not found:
        click.echo("no events")
    for event in found:
        amr = " ".join(event.amr or ())
        moment = datetime.fromtimestamp(event.at / 1000, timezone.utc)
        device, ip = json.dumps(event.device), json.dumps(event.ip)  # control characters escaped
        click.echo(f"{when(moment)}  {event.kind}  device={device}  ip={ip}  amr={amr or '-'}")
