"""Events in words, as the devices page shows them: "Signed in with a passkey on Firefox
on Android", "Someone used an old sign-in token; we signed that device out"."""

from __future__ import annotations

from flask_lucia.activity.store import Event
from flask_lucia.i18n import N_, gettext

#: What happened, by kind; ``%(device)s`` is the device's name.
_SENTENCES = {
    "sign_in": N_("Signed in on %(device)s"),
    "sign_in_failed": N_("Someone tried a wrong password on %(device)s"),
    "second_factor_failed": N_("Someone typed a wrong two-factor code on %(device)s"),
    "new_device": N_("First sign-in on %(device)s"),
    "refresh_reuse": N_("Someone used an old sign-in token; we signed that device out"),
    "signed_out_everywhere": N_("Signed out on every device"),
    "password_changed": N_("Changed the password on %(device)s"),
    "password_reset": N_("Reset the password with a link from an email, on %(device)s"),
    "email_changed": N_("Changed the email address on %(device)s"),
    "provider_linked": N_("Linked a sign-in provider on %(device)s"),
    "provider_unlinked": N_("Unlinked a sign-in provider on %(device)s"),
    "passkey_added": N_("Added a passkey on %(device)s"),
    "passkey_removed": N_("Removed a passkey on %(device)s"),
    "second_factor_on": N_("Turned on two-factor authentication on %(device)s"),
    "second_factor_off": N_("Turned off two-factor authentication on %(device)s"),
    "recovery_codes_new": N_("Made new recovery codes on %(device)s"),
    "account_deleted": N_("Deleted the account"),
}
#: One way in (an ``amr`` method) in words.
_METHODS = {
    "pwd": N_("a password"),
    "otp": N_("an authenticator code"),
    "recovery": N_("a recovery code"),
    "passkey": N_("a passkey"),
    "link": N_("a link from an email"),
    "code": N_("a code from an email"),
    "device": N_("a trusted browser"),
}
#: Provider names as their owners spell them; others are capitalised.
_PROVIDERS = {"github": "GitHub", "gitlab": "GitLab", "openid": "OpenID"}


def method(name: str) -> str:
    """One ``amr`` method in words: "a passkey", "GitHub" (in the request's language)."""
    if name.startswith("oauth:"):
        provider = name.partition(":")[2]
        return _PROVIDERS.get(provider, provider[:1].upper() + provider[1:]) or gettext(
            "a provider"
        )
    return gettext(_METHODS[name]) if name in _METHODS else name


def sentence(event: Event) -> str:
    """What happened, in words (without the time): "Signed in with a passkey on Chrome on
    Linux"; "a device we could not name" when there was no browser (the CLI)."""
    device = event.device or gettext("a device we could not name")
    if event.kind == "sign_in" and event.amr:
        ways = [method(name) for name in event.amr]
        way = ways[0]
        for more in ways[1:]:
            way = gettext("%(first)s and %(second)s", first=way, second=more)
        return gettext("Signed in with %(way)s on %(device)s", way=way, device=device)
    if event.kind not in _SENTENCES:
        return event.kind.replace("_", " ").capitalize()
    return gettext(_SENTENCES[event.kind], device=device)
