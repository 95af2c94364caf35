"""Sign in with GitHub, Google or any OpenID Connect provider, through Authlib (DESIGN §14).

Authlib does the protocol: state, PKCE (S256), nonce, discovery, the ID token's signature
and claims. This module decides what a callback does: sign in (through the sign-in
pipeline, ``web.pipeline``), link, create a user, or refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import (
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound

from flask_lucia import signals
from flask_lucia.core.auth import Auth
from flask_lucia.errors import LuciaError
from flask_lucia.i18n import gettext
from flask_lucia.oauth.profiles import (
    Failure,
    _protocol_errors,
    _protocol_failure,
    default_user_data,
    github_profile,
    oidc_profile,
)
from flask_lucia.oauth.settings import OAuthState, Profile, Provider, oauth_state
from flask_lucia.web.base import error_response, state
from flask_lucia.web.blueprint import bp
from flask_lucia.web.decorators import json_wanted, second_factor_missing, wants_json
from flask_lucia.web.links import external_url
from flask_lucia.web.notices import tell_owner
from flask_lucia.web.pipeline import finish_sign_in
from flask_lucia.web.proxies import request_state
from flask_lucia.web.redirects import safe_next_url


def _failure_response(provider: Provider | None, failure: Failure) -> ResponseReturnValue:
    """The clear page, or JSON ``AUTH_OAUTH_FAILED`` with the reason; nobody signed in."""
    current_app.logger.info("sign-in through %s failed: %s", provider and provider.name, failure)
    error = LuciaError("AUTH_OAUTH_FAILED", failure.message)
    name = provider.name if provider is not None else None
    if json_wanted():
        return error_response(error, failure.status, reason=failure.reason, provider=name)
    page = render_template(
        "lucia/oauth_error.html",
        provider=provider,
        reason=failure.reason,
        message=failure.message,
        signed_in=request_state.get("_lucia_user") is not None,
    )
    return Response(page, failure.status, mimetype="text/html")


def _oauth() -> OAuthState:
    oauth = oauth_state()
    if oauth is None:
        raise NotFound()
    return oauth


# -- the flow ------------------------------------------------------------------------


@bp.get("/oauth/<name>", endpoint="oauth_start")
def oauth_start(name: str) -> ResponseReturnValue:
    """Send the browser to the provider; a safe ``next`` waits with Authlib's state."""
    provider, client = _oauth().client(name)
    redirect_uri = external_url("lucia.oauth_callback", name=name)
    try:
        found = client.create_authorization_url(redirect_uri)
    except _protocol_errors() as error:
        return _failure_response(provider, _protocol_failure(error, provider.label))
    url = found.pop("url")
    client.save_authorize_data(
        redirect_uri=redirect_uri, next=safe_next_url(request.args.get("next")), **found
    )
    return redirect(url, 302)


@bp.get("/oauth/<name>/callback", endpoint="oauth_callback")
def oauth_callback(name: str) -> ResponseReturnValue:
    """Finish: sign the key's user in, link the key to the signed-in user, or create one."""
    oauth = _oauth()
    provider, client = oauth.client(name)
    started = client.framework.get_state_data(session, request.args.get("state")) or {}
    target = safe_next_url(started.get("next"))
    try:
        profile = _fetch_profile(provider, client)
        return _finish(oauth, provider, profile, target)
    except Failure as failure:
        return _failure_response(provider, failure)


def _fetch_profile(provider: Provider, client: Any) -> Profile:
    """Trade the code for tokens (Authlib checks state, PKCE, the ID token and its nonce)
    and read who signed in."""
    try:
        token = client.authorize_access_token()
        if provider.kind == "github":
            return _github_profile(client, token)
        return _oidc_profile(provider, client, token)
    except Failure:
        raise
    except _protocol_errors() as error:
        raise _protocol_failure(error, provider.label) from error


def _oidc_profile(provider: Provider, client: Any, token: Mapping[str, Any]) -> Profile:
    """The ID token's claims, completed from the userinfo endpoint when they lack the email
    (as providers that keep scope claims out of ID tokens do)."""
    claims = token.get("userinfo")
    if not claims:  # Authlib found no ID token to check: an OAuth-only answer
        message = gettext("%(provider)s sent no ID token.", provider=provider.label)
        raise Failure("invalid_id_token", message)
    claims = dict(claims)
    endpoint = client.load_server_metadata().get("userinfo_endpoint")
    if "email" not in claims and endpoint:
        extra = client.userinfo(token=token)
        if extra.get("sub") != claims.get("sub"):  # OpenID Connect Core 5.3.2
            message = gettext("%(provider)s described another account.", provider=provider.label)
            raise Failure("invalid_profile", message)
        claims = {**extra, **claims}
    return oidc_profile(claims)


def _github_profile(client: Any, token: Mapping[str, Any]) -> Profile:
    """GitHub's user, and its addresses when the ``user:email`` scope was granted."""
    response = client.get("user", token=token)
    response.raise_for_status()
    user = response.json()
    if not isinstance(user, Mapping):
        raise ValueError("GET /user is not an object")
    listed = client.get("user/emails", token=token)
    emails = listed.json() if listed.status_code == 200 else None
    return github_profile(user, emails if isinstance(emails, list) else None)


def _finish(
    oauth: OAuthState, provider: Provider, profile: Profile, target: str | None
) -> ResponseReturnValue:
    """Act on who signed in at the provider: link, sign in, or create, then go on."""
    auth = state()
    identifier = profile["sub"]
    if len(identifier) > auth.settings.identifier_max_length:
        message = gettext("The account id from %(provider)s is too long.", provider=provider.label)
        raise Failure("invalid_profile", message)
    owner = _user_by_key(auth, provider.name, identifier)
    current = request_state.get("_lucia_user")
    if current is not None:
        return _link(auth, provider, identifier, current, owner, target)
    created = False
    if owner is None:
        owner = _user_by_email(auth, oauth, provider, identifier, profile)
    if owner is None:
        owner, created = _create(auth, oauth, provider, identifier, profile)
    # A provider proves one factor, as a password does: the stages of DESIGN §19 decide
    # (an account with a second factor gets a pending sign-in, never a session).
    answer = finish_sign_in(
        owner, (f"oauth:{provider.name}",), next_url=target or "/", new_account=created
    )
    session = request_state.get("_lucia_session")
    if session is not None:  # signed in now, not pending
        signals.send(
            signals.oauth_signed_in,
            user=owner,
            session=session,
            provider=provider.name,
            profile=profile,
            created=created,
        )
    return answer


def _user_by_key(auth: Auth, provider: str, identifier: str) -> Any:
    """The user with the key ``provider:identifier``, or None (also for an identifier
    no key can have, such as one too long)."""
    try:
        return auth.get_user_by_provider_id(provider, identifier)
    except ValueError:
        return None
    except LuciaError as error:
        if error.code != "AUTH_INVALID_PROVIDER_ID":
            raise
        return None


def _link(
    auth: Auth, provider: Provider, identifier: str, current: Any, owner: Any, target: str | None
) -> ResponseReturnValue:
    """A signed-in user: the key becomes one more way in to this account, for a session
    that is fresh and proved the second factor when the account has one (DESIGN §18), so
    a stolen session gone stale cannot link its thief's provider account. The owner is
    told by mail."""
    user_id = auth.users.id_of(current)
    session = request_state.get("_lucia_session")
    if owner is not None and session is not None and auth.users.id_of(owner) == user_id:
        # DESIGN §19: the round trip at a provider already linked to this user proves it
        # again, so the session is fresh (a provider-only user's re-authentication).
        request_state._lucia_session = auth.step_up(session, f"oauth:{provider.name}")
        if wants_json():
            return jsonify({"linked": f"{provider.name}:{identifier}", "fresh": True})
        return redirect(target or url_for("lucia.oauth_settings"), 303)
    if owner is None:
        if session is None or not session.fresh or second_factor_missing(session):
            raise Failure(
                "confirm_first",
                gettext(
                    "To link %(provider)s, first confirm that it is you: sign in again, "
                    "then link it from your account's settings.",
                    provider=provider.label,
                ),
                403,
            )
        try:
            auth.add_provider_id(user_id, provider.name, identifier)
        except LuciaError as error:
            if error.code != "AUTH_DUPLICATE_PROVIDER_ID":
                raise
            owner = _user_by_key(auth, provider.name, identifier)  # linked meanwhile
        else:
            tell_owner(user_id, "provider_linked", provider.label)
    if owner is not None and auth.users.id_of(owner) != user_id:
        raise Failure(
            "linked_elsewhere",
            gettext(
                "This %(provider)s account is linked to another account.",
                provider=provider.label,
            ),
        )
    key = f"{provider.name}:{identifier}"
    if wants_json():
        return jsonify({"linked": key})
    flash(
        gettext("%(provider)s is linked: you can sign in with it.", provider=provider.label),
        "success",
    )
    return redirect(target or url_for("lucia.oauth_settings"), 303)


def _user_by_email(
    auth: Auth, oauth: OAuthState, provider: Provider, identifier: str, profile: Profile
) -> Any:
    """The password account with the provider's verified email, linked only when
    ``LUCIA_OAUTH_LINK_VERIFIED_EMAIL`` allows it; None when no account has it."""
    email = profile["email"]
    if email is None or not profile["email_verified"]:
        return None  # an address the provider does not vouch for matches nobody
    spellings = dict.fromkeys((email.strip(), email.strip().lower()))  # as given, lower-cased
    found = (_user_by_key(auth, auth.settings.password_provider, e) for e in spellings)
    existing = next((user for user in found if user is not None), None)
    if existing is None:
        return None
    if not oauth.settings.link_verified_email:
        raise Failure(
            "account_exists",
            gettext(
                "An account with this email already exists. Sign in with your password, "
                "then link %(provider)s from your account's settings.",
                provider=provider.label,
            ),
        )
    auth.add_provider_id(auth.users.id_of(existing), provider.name, identifier)
    tell_owner(auth.users.id_of(existing), "provider_linked", provider.label)
    return existing


def _create(
    auth: Auth, oauth: OAuthState, provider: Provider, identifier: str, profile: Profile
) -> tuple[Any, bool]:
    """A new user keyed by the provider; its data from ``oauth_user_data``."""
    if not auth.settings.sign_up:
        raise Failure(
            "sign_up_closed",
            gettext(
                "No account is linked to this %(provider)s account, and sign-up is closed.",
                provider=provider.label,
            ),
        )
    if oauth.user_data is None:
        data: Mapping[str, Any] = default_user_data(auth, profile)
    else:
        data = oauth.user_data(provider.name, profile)
    try:
        return auth.create_user(provider.name, identifier, user_data=data), True
    except LuciaError as error:
        if error.code == "AUTH_DUPLICATE_PROVIDER_ID":  # a parallel callback created it
            return auth.get_user_by_provider_id(provider.name, identifier), False
        if error.code == "AUTH_DUPLICATE_USER_DATA":
            raise Failure(
                "account_exists", "An account with these details already exists."
            ) from error
        raise
    except (TypeError, ValueError) as error:
        current_app.logger.warning("oauth_user_data for %s: %s", provider.name, error)
        raise Failure(
            "invalid_user_data", "The account could not be created from this profile."
        ) from error
