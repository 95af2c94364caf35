"""The OAuth feature plugs in (DESIGN §14): its routes, its providers registered with Authlib
at ``init_app``, and the sign-in buttons' template global.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import (
    Flask,
)

from flask_lucia.core.auth import Auth
from flask_lucia.oauth import flow as _flow  # noqa: F401 - adds its routes
from flask_lucia.oauth import linked as _linked  # noqa: F401 - adds its routes
from flask_lucia.oauth.settings import (
    _AUTHLIB_STATE,
    INSTALL_HINT,
    OAuthSettings,
    OAuthState,
    UserDataFunction,
    _client_options,
    oauth_state,
)
from flask_lucia.web.pipeline import Pipeline


def init_app(
    app: Flask, auth: Auth, pipeline: Pipeline, user_data: UserDataFunction | None
) -> None:
    """Parse ``LUCIA_OAUTH_*``; with providers, register them with Authlib for this app,
    and their names with the sign-in pipeline (``oauth:github`` is "GitHub")."""
    settings = OAuthSettings.from_config(app.config, auth.settings.password_provider)
    app.jinja_env.globals["lucia_oauth_providers"] = button_providers
    for provider in settings.providers.values():
        pipeline.method_names[f"oauth:{provider.name}"] = provider.label
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
