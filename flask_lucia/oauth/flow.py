"""Sign in with GitHub, Google or any OpenID Connect provider, through Authlib (DESIGN §14).

Authlib does the protocol: state, PKCE (S256), nonce, discovery, the ID token's signature
and claims. This module reads ``LUCIA_OAUTH_PROVIDERS``, keeps each app's Authlib registry
in ``app.extensions["lucia_oauth"]``, turns a provider's answer into a
profile, and decides what a callback does: sign in, link, create a user, or refuse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from flask import (
    Flask,
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
from flask_lucia.config import to_ms
from flask_lucia.core.auth import Auth
from flask_lucia.errors import LuciaError
from flask_lucia.web.base import error_response, state
from flask_lucia.web.decorators import factors_required, login_required, wants_json
from flask_lucia.web.hook import sign_in
from flask_lucia.web.links import external_url
from flask_lucia.web.notices import tell_owner
from flask_lucia.web.pipeline import finish_sign_in
from flask_lucia.web.proxies import request_state
from flask_lucia.web.redirects import safe_next_url
from flask_lucia.web.script import session_body
from flask_lucia.web.views import bp

#: What ``pip install`` brings the OAuth support.
INSTALL_HINT = 'pip install "flask-lucia[oauth]"'
_AUTHLIB_STATE = "authlib.integrations.flask_client"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")

Kind = Literal["oidc", "github"]

#: The presets: what GitHub and Google need besides a client id and secret. Every
#: value can be overridden per app (``api_base_url`` and the URLs too, for tests).
PRESETS: dict[str, dict[str, Any]] = {
    "github": {
        "kind": "github",
        "label": "GitHub",
        "scope": "read:user user:email",
        "authorize_url": "https://github.com/login/oauth/authorize",
        "access_token_url": "https://github.com/login/oauth/access_token",
        "api_base_url": "https://api.github.com/",
        "token_endpoint_auth_method": "client_secret_post",
    },
    "google": {
        "kind": "oidc",
        "label": "Google",
        "scope": "openid email profile",
        "server_metadata_url": "https://accounts.google.com/.well-known/openid-configuration",
    },
}
_GENERIC: dict[str, Any] = {"kind": "oidc", "scope": "openid email profile"}
_COMMON_KEYS = frozenset(
    {
        "client_id",
        "client_secret",
        "label",
        "scope",
        "authorize_params",
        "token_endpoint_auth_method",
    }
)
_KEYS: dict[str, frozenset[str]] = {
    "oidc": _COMMON_KEYS | {"server_metadata_url"},
    "github": _COMMON_KEYS | {"authorize_url", "access_token_url", "api_base_url"},
}
_AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post"})


class Profile(TypedDict):
    """Who the provider says signed in, the same shape for every provider."""

    sub: str  #: the provider's stable id of the account: GitHub's numeric id, the OIDC ``sub``
    email: str | None
    email_verified: bool  #: True only when the provider vouches for ``email``
    name: str | None
    username: str | None  #: GitHub's login, the OIDC ``preferred_username``
    picture: str | None
    raw: dict[str, Any]  #: what the provider answered, as it answered it


#: ``Lucia(oauth_user_data=fn)``: the user data of a user created by a provider sign-in.
UserDataFunction = Callable[[str, Profile], Mapping[str, Any]]


@dataclass(frozen=True)
class Provider:
    """One configured provider, checked at ``init_app``."""

    name: str
    kind: Kind
    label: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str
    token_endpoint_auth_method: str = "client_secret_basic"
    server_metadata_url: str | None = None
    authorize_url: str | None = None
    access_token_url: str | None = None
    api_base_url: str | None = None
    authorize_params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OAuthSettings:
    """``LUCIA_OAUTH_*``, parsed: the providers, the email-linking rule, the timeout."""

    providers: Mapping[str, Provider]
    link_verified_email: bool
    timeout: float  # seconds, for each request to a provider

    @classmethod
    def from_config(cls, config: Mapping[str, Any], password_provider: str) -> OAuthSettings:
        """Check the ``LUCIA_OAUTH_*`` keys; a bad provider is refused, named."""
        raw = config["LUCIA_OAUTH_PROVIDERS"]
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise TypeError("LUCIA_OAUTH_PROVIDERS must be a dict of provider name -> settings")
        providers = {
            name: _provider(name, options, password_provider) for name, options in raw.items()
        }
        link = config["LUCIA_OAUTH_LINK_VERIFIED_EMAIL"]
        if not isinstance(link, bool):
            raise TypeError(f"LUCIA_OAUTH_LINK_VERIFIED_EMAIL must be True or False, not {link!r}")
        timeout = to_ms(config["LUCIA_OAUTH_TIMEOUT"], "LUCIA_OAUTH_TIMEOUT") / 1000
        if timeout <= 0:
            raise ValueError("LUCIA_OAUTH_TIMEOUT must be more than zero")
        return cls(providers, link, timeout)


def _provider(name: object, options: object, password_provider: str) -> Provider:
    """One entry of ``LUCIA_OAUTH_PROVIDERS``: a preset's values under the app's own."""
    where = f"LUCIA_OAUTH_PROVIDERS[{name!r}]"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{where}: a provider name is 1-32 of a-z, 0-9, '-', '_'")
    if name == password_provider:
        raise ValueError(f"{where}: {name!r} is LUCIA_PASSWORD_PROVIDER, the password provider")
    if not isinstance(options, Mapping):
        raise TypeError(f"{where} must be a dict with client_id and client_secret")
    values = {**PRESETS.get(name, _GENERIC), **options}
    kind: Kind = values.pop("kind")
    unknown = sorted(str(key) for key in options if key not in _KEYS[kind])
    if unknown:
        known = ", ".join(sorted(_KEYS[kind]))
        raise ValueError(f"{where}: unknown key {', '.join(unknown)} (known: {known})")
    for key in ("client_id", "client_secret"):
        if not isinstance(values.get(key), str) or not values[key]:
            raise ValueError(f"{where} is missing its {key}")
    if kind == "oidc" and not values.get("server_metadata_url"):
        raise ValueError(
            f"{where} needs a server_metadata_url (the provider's "
            "/.well-known/openid-configuration); only github and google are presets"
        )
    for key in ("server_metadata_url", "authorize_url", "access_token_url", "api_base_url"):
        url = values.get(key)
        if url is not None and (not isinstance(url, str) or not url.startswith("http")):
            raise ValueError(f"{where}: {key} must be an http(s) URL")
    scope = values["scope"]
    if not isinstance(scope, str) or (kind == "oidc" and "openid" not in scope.split()):
        raise ValueError(f"{where}: scope must be a string (with 'openid' for OpenID Connect)")
    method = values.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in _AUTH_METHODS:
        raise ValueError(
            f"{where}: token_endpoint_auth_method must be one of {sorted(_AUTH_METHODS)}"
        )
    params = values.get("authorize_params") or {}
    if not isinstance(params, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise TypeError(f"{where}: authorize_params must be a dict of strings")
    label = values.get("label") or name.replace("-", " ").replace("_", " ").title()
    return Provider(
        name=name,
        kind=kind,
        label=str(label),
        client_id=values["client_id"],
        client_secret=values["client_secret"],
        scope=scope,
        token_endpoint_auth_method=method,
        server_metadata_url=values.get("server_metadata_url"),
        authorize_url=values.get("authorize_url"),
        access_token_url=values.get("access_token_url"),
        api_base_url=values.get("api_base_url"),
        authorize_params=dict(params),
    )


class OAuthState:
    """One app's providers: their settings, Authlib's clients, the user-data function."""

    def __init__(
        self, settings: OAuthSettings, registry: Any, user_data: UserDataFunction | None
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.user_data = user_data

    def client(self, name: str) -> tuple[Provider, Any]:
        """A provider and its Authlib client; 404 for a name that is not configured."""
        provider = self.settings.providers.get(name)
        if provider is None:
            raise NotFound()
        return provider, self.registry.create_client(name)


def init_app(app: Flask, auth: Auth, user_data: UserDataFunction | None) -> None:
    """Parse ``LUCIA_OAUTH_*``; with providers, register them with Authlib for this app."""
    settings = OAuthSettings.from_config(app.config, auth.settings.password_provider)
    app.jinja_env.globals["lucia_oauth_providers"] = button_providers
    if not settings.providers:
        return
    try:
        from authlib.integrations.flask_client import OAuth
    except ImportError:
        names = ", ".join(settings.providers)
        raise RuntimeError(
            f"LUCIA_OAUTH_PROVIDERS ({names}) needs Authlib: {INSTALL_HINT}"
        ) from None
    if not app.secret_key:
        raise RuntimeError(
            "LUCIA_OAUTH_PROVIDERS needs app.secret_key: a sign-in's state, PKCE verifier "
            "and nonce wait in Flask's signed session cookie"
        )
    registry = OAuth()
    theirs = app.extensions.get(_AUTHLIB_STATE)
    registry.init_app(app)  # Authlib reads a few optional <NAME>_* keys from app.config
    if theirs is not None:  # the app's own Authlib registry keeps its place
        app.extensions[_AUTHLIB_STATE] = theirs
    for provider in settings.providers.values():
        registry.register(provider.name, **_client_options(provider, settings.timeout))
    app.extensions["lucia_oauth"] = OAuthState(settings, registry, user_data)


def _client_options(provider: Provider, timeout: float) -> dict[str, Any]:
    """Authlib's registration of a provider: PKCE S256 always, a timeout on every request."""
    return {
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "server_metadata_url": provider.server_metadata_url,
        "authorize_url": provider.authorize_url,
        "access_token_url": provider.access_token_url,
        "api_base_url": provider.api_base_url,
        "authorize_params": dict(provider.authorize_params) or None,
        "access_token_params": None,
        "request_token_url": None,  # OAuth 2 only
        "request_token_params": None,
        "refresh_token_url": None,
        "refresh_token_params": None,
        "client_kwargs": {
            "scope": provider.scope,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": provider.token_endpoint_auth_method,
            "default_timeout": timeout,
        },
    }


@dataclass(frozen=True)
class ProviderButton:
    """What a sign-in button needs: the provider's name (for the URL) and its label."""

    name: str
    label: str


def button_providers() -> list[ProviderButton]:
    """The current app's providers, in configuration order (the ``lucia_oauth_providers``
    template global, for the sign-in and sign-up buttons)."""
    oauth = oauth_state()
    if oauth is None:
        return []
    return [ProviderButton(p.name, p.label) for p in oauth.settings.providers.values()]


# -- profiles ------------------------------------------------------------------------


def _text(value: object) -> str | None:
    """A non-empty string claim, or None."""
    return value if isinstance(value, str) and value else None


def _subject(value: object) -> str:
    """The provider's account id as a string; a missing or odd one is refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise Failure("invalid_profile", "The provider did not say which account signed in.")


def oidc_profile(claims: Mapping[str, Any]) -> Profile:
    """The profile of OpenID Connect claims (Google's and any other provider's).

    ``email_verified`` counts only when it is true (Google once sent the string "true").
    """
    verified = claims.get("email_verified")
    return Profile(
        sub=_subject(claims.get("sub")),
        email=_text(claims.get("email")),
        email_verified=verified is True or verified == "true",
        name=_text(claims.get("name")),
        username=_text(claims.get("preferred_username")),
        picture=_text(claims.get("picture")),
        raw=dict(claims),
    )


def github_profile(user: Mapping[str, Any], emails: Sequence[Any] | None) -> Profile:
    """The profile of GitHub's ``GET /user`` and ``GET /user/emails``.

    The email is the primary address when GitHub has verified it, else any verified one;
    without one, the public address of the profile, marked unverified.
    """
    listed = [e for e in emails or () if isinstance(e, Mapping) and _text(e.get("email"))]
    verified = [e for e in listed if e.get("verified") is True]
    verified.sort(key=lambda e: e.get("primary") is not True)
    email, email_verified = _text(user.get("email")), False
    if verified:
        email, email_verified = verified[0]["email"], True
    login = _text(user.get("login"))
    return Profile(
        sub=_subject(user.get("id")),
        email=email,
        email_verified=email_verified,
        name=_text(user.get("name")) or login,
        username=login,
        picture=_text(user.get("avatar_url")),
        raw={"user": dict(user), "emails": list(emails or [])},
    )


def default_user_data(auth: Auth, profile: Profile) -> dict[str, Any]:
    """A new user's data when the app gives no ``oauth_user_data``: the verified email and
    the name, where the user table has ``email`` and ``name`` columns they fit."""
    wanted = {"email": profile["email"] if profile["email_verified"] else None}
    wanted["name"] = profile["name"]
    columns = auth.storage.users.c
    data: dict[str, Any] = {}
    for name, value in wanted.items():
        if value is None or name not in auth.storage.user_column_names:
            continue
        length = getattr(columns[name].type, "length", None)
        if length is None or len(value) <= length:
            data[name] = value
    return data


# -- failures ------------------------------------------------------------------------


class Failure(Exception):
    """A sign-in through a provider that ends here: ``reason`` is a short code for
    scripts, ``message`` is for people; ``status`` 502 when the provider is at fault."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.status = status


def _protocol_failure(error: Exception, label: str) -> Failure:
    """What went wrong in an Authlib call, as a ``Failure``; unknown errors propagate."""
    import requests
    from authlib.common.errors import AuthlibBaseError
    from joserfc.errors import JoseError

    if isinstance(error, requests.Timeout):
        return Failure("provider_timeout", f"{label} did not answer in time. Try again.", 502)
    if isinstance(error, requests.HTTPError):
        status = error.response.status_code if error.response is not None else "?"
        return Failure("provider_error", f"{label} answered with an error (HTTP {status}).", 502)
    if isinstance(error, requests.RequestException):
        return Failure("provider_unreachable", f"{label} could not be reached. Try again.", 502)
    if isinstance(error, JoseError):
        detail = getattr(error, "description", "") or getattr(error, "error", "")
        return Failure(
            "invalid_id_token", f"{label} sent an ID token that failed its checks ({detail})."
        )
    if isinstance(error, AuthlibBaseError):
        code = getattr(error, "error", None)
        if code == "mismatching_state":
            return Failure(
                "state_mismatch",
                "This sign-in was not started in this browser, or it was finished already. "
                "Start again.",
            )
        if code == "access_denied":
            return Failure("access_denied", f"You did not allow the sign-in at {label}.")
        if code == "invalid_grant":
            return Failure(
                "invalid_grant",
                f"{label} refused the sign-in code: it was used already or has expired. "
                "Start again.",
            )
        return Failure("provider_error", f"{label} refused the sign-in ({code}).")
    if isinstance(error, (ValueError, KeyError, RuntimeError)):  # a malformed answer
        return Failure("provider_error", f"{label} sent an answer that could not be used.", 502)
    raise error


def _protocol_errors() -> tuple[type[Exception], ...]:
    """The exceptions an Authlib call raises for the provider's part, not for a bug of ours."""
    import requests
    from authlib.common.errors import AuthlibBaseError
    from joserfc.errors import JoseError

    # RuntimeError: Authlib's word for discovery that lacks an endpoint it needs
    return (
        requests.RequestException,
        AuthlibBaseError,
        JoseError,
        ValueError,
        KeyError,
        RuntimeError,
    )


def _failure_response(provider: Provider | None, failure: Failure) -> ResponseReturnValue:
    """The clear page, or JSON ``AUTH_OAUTH_FAILED`` with the reason; nobody signed in."""
    current_app.logger.info("sign-in through %s failed: %s", provider and provider.name, failure)
    error = LuciaError("AUTH_OAUTH_FAILED", failure.message)
    name = provider.name if provider is not None else None
    if wants_json() or not current_app.config["LUCIA_REGISTER_VIEWS"]:
        return error_response(error, failure.status, reason=failure.reason, provider=name)
    page = render_template(
        "lucia/oauth_error.html",
        provider=provider,
        reason=failure.reason,
        message=failure.message,
        signed_in=request_state.get("_lucia_user") is not None,
    )
    return Response(page, failure.status, mimetype="text/html")


def oauth_state() -> OAuthState | None:
    """The current app's providers (``app.extensions["lucia_oauth"]``); None without any."""
    found: OAuthState | None = current_app.extensions.get("lucia_oauth")
    return found


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
        raise Failure("invalid_id_token", f"{provider.label} sent no ID token.")
    claims = dict(claims)
    endpoint = client.load_server_metadata().get("userinfo_endpoint")
    if "email" not in claims and endpoint:
        extra = client.userinfo(token=token)
        if extra.get("sub") != claims.get("sub"):  # OpenID Connect Core 5.3.2
            raise Failure("invalid_profile", f"{provider.label} described another account.")
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
        raise Failure("invalid_profile", f"{provider.label}'s account id is too long.")
    owner = _user_by_key(auth, provider.name, identifier)
    current = request_state.get("_lucia_user")
    if current is not None:
        return _link(auth, provider, identifier, current, owner, target)
    created = False
    if owner is None:
        owner = _user_by_email(auth, oauth, provider, identifier, profile)
    if owner is None:
        owner, created = _create(auth, oauth, provider, identifier, profile)
    # A provider proves one factor, as a password does: an account with a second factor
    # gets the pending sign-in of DESIGN §15, never a session, until the code is given.
    if not created and (pending := finish_sign_in(owner, target)) is not None:
        return pending
    session = sign_in(owner, fresh=True, new_account=created)
    signals.send(
        signals.oauth_signed_in,
        user=owner,
        session=session,
        provider=provider.name,
        profile=profile,
        created=created,
    )
    if wants_json():
        return jsonify(session_body(owner, session))
    return redirect(target or "/", 303)


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
    if owner is None:
        session = request_state.get("_lucia_session")
        strong = session is not None and session.fresh
        if strong and not session.mfa and auth.has_second_factor(user_id):
            strong = False
        if not strong:
            raise Failure(
                "confirm_first",
                f"To link {provider.label}, first confirm that it is you: sign in again, "
                "then link it from your account's settings.",
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
            "linked_elsewhere", f"This {provider.label} account is linked to another account."
        )
    key = f"{provider.name}:{identifier}"
    if wants_json():
        return jsonify({"linked": key})
    flash(f"{provider.label} is linked: you can sign in with it.", "info")
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
            f"An account with this email already exists. Sign in with your password, "
            f"then link {provider.label} from your account's settings.",
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
            f"No account is linked to this {provider.label} account, and sign-up is closed.",
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
    if wants_json() or not current_app.config["LUCIA_REGISTER_VIEWS"]:
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
    if wants_json() or not current_app.config["LUCIA_REGISTER_VIEWS"]:
        return jsonify({"unlinked": key})
    flash("Unlinked: it no longer signs you in.", "info")
    return redirect(url_for("lucia.oauth_settings"), 303)


def _unlink_answer(error: LuciaError, status: int) -> ResponseReturnValue:
    if wants_json() or not current_app.config["LUCIA_REGISTER_VIEWS"]:
        return error_response(error, status)
    flash(error.message, "error")
    return redirect(url_for("lucia.oauth_settings"), 303)
