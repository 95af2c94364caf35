"""The sign-in pipeline's registration points (DESIGN §19): what runs between "a first
factor was right" and "here is a session", and after a sign-up.

The core views, the provider sign-in and every other way in call ``finish_sign_in`` once
the first factor is proved; each stage a feature registered at ``init_app`` may answer
instead of a session (the second factor answers with a pending sign-in). Features meet
here, not by importing each other. One ``Pipeline`` lives in
``app.extensions["lucia_pipeline"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from werkzeug.wrappers import Response as BaseResponse

#: A stage: ``(user, next_url)`` -> an answer that replaces the session, or None to go on.
Stage = Callable[[Any, "str | None"], "BaseResponse | None"]
#: After a sign-up: ``(user_id, client_address)``.
SignedUp = Callable[[Any, "str | None"], object]


@dataclass
class Pipeline:
    """The stages and sign-up hooks the features of one app registered."""

    stages: list[Stage] = field(default_factory=list)
    signed_up: list[SignedUp] = field(default_factory=list)


def pipeline() -> Pipeline:
    """The current app's ``Pipeline``."""
    found: Pipeline = current_app.extensions["lucia_pipeline"]
    return found


def finish_sign_in(user: Any, next_url: str | None = None) -> BaseResponse | None:
    """After a first factor: the first stage's answer (e.g. the pending sign-in of a
    second factor), or None when the caller may sign the user in."""
    for stage in pipeline().stages:
        answer = stage(user, next_url)
        if answer is not None:
            return answer
    return None


def after_sign_up(user_id: Any, client_address: str | None) -> None:
    """Run what the features do for a new account (the email feature mails its first
    verification link)."""
    for hook in pipeline().signed_up:
        hook(user_id, client_address)
