"""Password hashing (argon2id) and the password policy (NIST SP 800-63B, section 3.1.1.2).

The policy asks for length, not composition: at least PASSWORD_MIN_LENGTH characters, and a
password that is not easy to guess. "Easy to guess" is zxcvbn's estimate, which matches
the password against its list of 30,000 passwords most common in breach corpora, English
words, names, keyboard patterns, sequences, repeats and dates, and against the user's own
name and e-mail address. The demo password is published in the README, so it is refused
everywhere except in the demo seed.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from trialmgr.errors import Invalid

DEMO_PASSWORD = "demo-password-2026"
MAX_LENGTH = 256
# zxcvbn scores 0-4; 3 is "safely unguessable" (about 10^8 guesses or more), the level
# the zxcvbn authors recommend for an online service that limits login attempts.
MIN_SCORE = 3
ESTIMATE_LENGTH = 72
# Words an attacker tries first against this service, whoever the user is.
SERVICE_WORDS = ("trialmgr",)


def _hasher() -> PasswordHasher:
    params = current_app.config.get("PASSWORD_HASH_PARAMS") or {}
    return PasswordHasher(**params)  # argon2id by default


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify(stored: str, password: str) -> bool:
    try:
        return _hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher().check_needs_rehash(stored)


# A real hash per hashing cost, verified when there is no account to check, so that the
# answer takes as long as for an account (no timing tells which e-mails have accounts).
_dummy_hashes: dict[str, str] = {}


def burn_time(password: str) -> None:
    """Spend what verifying a password costs, and learn nothing."""
    key = repr(sorted((current_app.config.get("PASSWORD_HASH_PARAMS") or {}).items()))
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hash_password("not-a-real-password-0000")
    verify(_dummy_hashes[key], password)


def _personal_words(email: str | None, name: str | None) -> tuple[set[str], list[str]]:
    """Words of the user's own that a password must not contain: the e-mail's local part,
    the name run together, and each word of either, when 4 characters or longer (shorter
    ones, like "Ada" or "li", are inside too many ordinary words to refuse outright).
    Second, every word of either, for zxcvbn to treat as easy to guess."""
    refused: set[str] = set()
    hints: list[str] = []
    for text in (email.split("@")[0] if email else "", name or ""):
        text = text.strip().lower()
        whole = re.sub(r"\s+", "", text)
        if len(whole) >= 4:
            refused.add(whole)
        refused.update(re.findall(r"[^\W\d_]{4,}", text))
        hints += [whole, *re.findall(r"[^\W\d_]+", text)]
    return refused, [hint for hint in hints if hint]


def policy_problems(
    password: str,
    *,
    email: str | None = None,
    name: str | None = None,
    allow_demo_password: bool = False,
) -> list[str]:
    """What is wrong with a new password, as sentences for the person choosing it."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(password) < minimum:
        return [f"Use at least {minimum} characters."]
    if len(password) > MAX_LENGTH:
        return [f"Use at most {MAX_LENGTH} characters."]
    lowered = password.lower()
    if not allow_demo_password and lowered.strip() == DEMO_PASSWORD:
        return ["This is the published demo password. Choose a password of your own."]
    personal, hints = _personal_words(email, name)
    if any(word in lowered for word in personal):
        return ["Do not use your name or e-mail address in your password."]
    # zxcvbn's cost grows fast with length, so it reads at most its own limit of 72
    # characters: a longer password is judged by its beginning (which must be hard enough).
    from zxcvbn import zxcvbn  # its word lists load when a password is judged, not with the app

    estimate = zxcvbn(password[:ESTIMATE_LENGTH], user_inputs=[*hints, *SERVICE_WORDS])
    if estimate["score"] < MIN_SCORE:
        warning = estimate["feedback"]["warning"]
        why = f"{warning} " if warning else ""
        return [
            f"This password is too easy to guess. {why}"
            "A few unrelated words together make a strong password that is easy to remember."
        ]
    return []


def check_password_policy(
    password: str,
    *,
    email: str | None = None,
    name: str | None = None,
    allow_demo_password: bool = False,
) -> None:
    """Refuse (422, on the `password` field) a password the policy does not accept.
    `allow_demo_password` is for the demo seed alone."""
    problems = policy_problems(
        password, email=email, name=name, allow_demo_password=allow_demo_password
    )
    if problems:
        raise Invalid("The password does not meet the policy.", errors={"password": problems})
