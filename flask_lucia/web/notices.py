"""Telling the owner (DESIGN §18): a mail on every change to the ways into an account
(a provider linked or unlinked, a passkey added or removed, the second factor on or off,
the password or the address changed) and on a sign-in from a browser that has never
signed in to the account before. Each names the device, the address and the time, and
links to the devices page. A notice never fails the request that caused it.

Features call ``tell_owner`` here; the mail goes through the notifier the email feature
registers at ``init_app`` (``Auth.owner_notifier``), so no feature imports another.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import current_app, request

from flask_lucia.errors import LuciaError
from flask_lucia.messages import exact_time
from flask_lucia.web.agents import device_name
from flask_lucia.web.base import presented_device, state
from flask_lucia.web.links import external_url
from flask_lucia.web.proxies import request_state

#: What a notice is about, as ``security_notice`` templates name it.
CHANGES = frozenset(
    {
        "new_sign_in",
        "provider_linked",
        "provider_unlinked",
        "passkey_added",
        "passkey_removed",
        "second_factor_on",
        "second_factor_off",
        "recovery_codes_new",
    }
)


def where_and_when() -> dict[str, Any]:
    """This request's device, client address and time, and the link to the devices page's
    recent activity (None where there is no page): the context every notice mail shows."""
    link = None
    if current_app.config["LUCIA_REGISTER_VIEWS"]:
        try:
            link = external_url("lucia.devices") + "#activity"
        except (LuciaError, RuntimeError):  # no trustworthy base for a link: no link
            link = None
    return {
        "device": device_name(request.user_agent.string),
        "ip": request.remote_addr,
        "when": exact_time(datetime.now(timezone.utc)),
        "devices_link": link,
    }


def tell_owner(user_id: Any, change: str, detail: str | None = None) -> bool:
    """Mail the user's address about ``change`` (one of ``CHANGES``; ``detail``: what was
    linked or added, by name); False when it has no address or the mail failed (logged).

    Sent by the notifier a feature registered (``Auth.owner_notifier``: the email
    feature's); without one nothing is sent."""
    assert change in CHANGES, change
    notify = state().owner_notifier
    if notify is None:
        return False
    return notify(
        user_id, "security_notice", lambda: {"change": change, "detail": detail, **where_and_when()}
    )


def know_device(user: Any, *, new_account: bool = False) -> None:
    """After a browser sign-in: a browser without a device cookie for any of the user's keys
    has never signed in to the account, so the owner is told (unless the account was made
    just now) and the browser gets a device cookie. Nothing happens with device cookies off
    (every browser would look new). The browser's device nonce is kept on the request
    (``_lucia_device_nonce``) for "trust this browser"."""
    auth = state()
    user_id = auth.users.id_of(user)
    try:
        keys = auth.get_user_provider_ids(user_id)
    except LuciaError:
        return
    if not keys or auth.settings.device_cookie is None or not current_app.secret_key:
        return
    presented = presented_device()
    if presented is not None:
        known = next(filter(None, (auth.device_nonce(key, presented) for key in keys)), None)
        if known is not None:
            request_state._lucia_device_nonce = known
            return
    preferred = f"{auth.settings.password_provider}:"
    bound = next((key for key in keys if key.startswith(preferred)), keys[0])
    if request_state.get("_lucia_device_cookie") is None:
        issued = auth.new_device(bound)
        if issued is not None:
            request_state._lucia_device_cookie, request_state._lucia_device_nonce = issued
    if not new_account:
        request_state._lucia_new_device = user_id  # the activity feature records it
        tell_owner(user_id, "new_sign_in")
