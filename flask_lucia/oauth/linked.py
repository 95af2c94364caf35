"""The providers linked to the signed-in user: the settings page, and unlinking one."""

from __future__ import annotations

from collections.abc import Mapping

from flask import (
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound

from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.oauth.flow import _oauth
from flask_lucia.web.base import error_response, state
from flask_lucia.web.blueprint import bp
from flask_lucia.web.decorators import factors_required, json_wanted, login_required
from flask_lucia.web.notices import tell_owner
from flask_lucia.web.proxies import request_state

# -- linked providers ------------------------------------------------------------------


@bp.get("/oauth", endpoint="oauth_settings")
@login_required
def oauth_settings() -> ResponseReturnValue:
    """The providers linked to the signed-in user, each with unlink (never the last key)."""
    oauth = _oauth()
    auth = state()
    keys = auth.get_user_provider_ids(auth.users.id_of(request_state.get("_lucia_user")))
    rows = [
        {
            "name": p.name,
            "label": p.label,
            "linked": [k.partition(":")[2] for k in keys if k.partition(":")[0] == p.name],
        }
        for p in oauth.settings.providers.values()
    ]
    if json_wanted():
        return jsonify({"providers": rows, "keys": len(keys)})
    return render_template("lucia/oauth_settings.html", providers=rows, last=len(keys) <= 1)


@bp.post("/oauth/<name>/unlink", endpoint="oauth_unlink")
@factors_required
def oauth_unlink(name: str) -> ResponseReturnValue:
    """Remove a provider's key from the signed-in user; refused for the last way in."""
    auth = state()
    if name not in _oauth().settings.providers:
        raise NotFound()
    user_id = auth.users.id_of(request_state.get("_lucia_user"))
    body = request.get_json(silent=True) if request.is_json else request.form
    identifier = body.get("identifier") if isinstance(body, Mapping) else None
    if identifier is None:
        mine = [k for k in auth.get_user_provider_ids(user_id) if k.startswith(f"{name}:")]
        identifier = mine[0].partition(":")[2] if len(mine) == 1 else None
    if not isinstance(identifier, str) or not identifier:
        identifier = ""  # refused below as nothing to unlink
    nothing = LuciaError("AUTH_INVALID_PROVIDER_ID", "Nothing to unlink.")
    try:
        auth.remove_provider_id(user_id, name, identifier)
    except ValueError:  # an identifier no key can have
        return _unlink_answer(nothing, 404)
    except LuciaError as error:
        if error.code == "AUTH_LAST_PROVIDER_ID":
            return _unlink_answer(error, error.status)
        if error.code != "AUTH_INVALID_PROVIDER_ID":
            raise
        return _unlink_answer(nothing, 404)
    key = f"{name}:{identifier}"
    tell_owner(user_id, "provider_unlinked", _oauth().settings.providers[name].label)
    if json_wanted():
        return jsonify({"unlinked": key})
    flash(gettext("Unlinked: it no longer signs you in."), "success")
    return redirect(url_for("lucia.oauth_settings"), 303)


def _unlink_answer(error: LuciaError, status: int) -> ResponseReturnValue:
    if json_wanted():
        return error_response(error, status)
    flash(error.message, "error")
    return redirect(url_for("lucia.oauth_settings"), 303)
