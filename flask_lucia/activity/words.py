"""Events in words, as the devices page shows them: "Signed in with a passkey on Firefox
on Android", "Someone used an old sign-in token; we signed that device out"."""

from __future__ import annotations

from flask_lucia.activity.store import Event

#: What happened, by kind; ``{device}`` is the device's name.
_SENTENCES = {
    "sign_in": "Signed in{way} on {device}",
    "sign_in_failed": "Someone tried a wrong password on {device}",
    "new_device": "First sign-in on {device}",
    "refresh_reuse": "Someone used an old sign-in token; we signed that device out",
    "signed_out_everywhere": "Signed out on every device",
    "password_changed": "Changed the password on {device}",
    "password_reset": "Reset the password with a link from an email, on {device}",
    "email_changed": "Changed the email address on {device}",
    "provider_linked": "Linked a sign-in provider on {device}",
    "provider_unlinked": "Unlinked a sign-in provider on {device}",
    "passkey_added": "Added a passkey on {device}",
    "passkey_removed": "Removed a passkey on {device}",
    "second_factor_on": "Turned on two-factor authentication on {device}",
    "second_factor_off": "Turned off two-factor authentication on {device}",
    "account_deleted": "Deleted the account",
}
#: One way in (an ``amr`` method) in words.
_METHODS = {
    "pwd": "a password",
    "otp": "an authenticator code",
    "recovery": "a recovery code",
    "passkey": "a passkey",
    "link": "a link from an email",
    "code": "a code from an email",
    "device": "a trusted browser",
}
#: Provider names as their owners spell them; others are capitalised.
_PROVIDERS = {"github": "GitHub", "gitlab": "GitLab", "openid": "OpenID"}


def method(name: str) -> str:
    """One ``amr`` method in words: "a passkey", "GitHub"."""
    if name.startswith("oauth:"):
        provider = name.partition(":")[2]
        return _PROVIDERS.get(provider, provider[:1].upper() + provider[1:]) or "a provider"
    return _METHODS.get(name, name)


def sentence(event: Event) -> str:
    """What happened, in words (without the time): "Signed in with a passkey on Chrome on
    Linux"; "a device we could not name" when there was no browser (the CLI)."""
    way = ""
    if event.amr:
        way = " with " + " and ".join(method(name) for name in event.amr)
    template = _SENTENCES.get(event.kind, event.kind.replace("_", " ").capitalize())
    device = event.device or "a device we could not name"
    return template.format(way=way, device=device)
