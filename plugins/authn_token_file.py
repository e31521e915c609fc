"""Static bearer tokens (kube-apiserver's ``--token-auth-file``), alias ``token-file``.

The file named by ``config.token_auth_file`` is a CSV with one token per line::

    token,user,uid,"group1,group2"

At least three columns (token, user name, uid); the optional fourth is a comma-separated group
list (quote it when it has commas). Blank lines are skipped; a line with an empty token is
skipped, as kube-apiserver does; when a token repeats, the last line wins. The file is read once,
at startup (``kapi_startup``); a malformed line stops the server with an error naming the file
and the line number, never the token.

A request with ``Authorization: Bearer TOKEN`` whose token is in the file authenticates as that
line's user, uid and groups. An unknown token is not this plugin's: it returns None so another
authenticator (a service-account token, say) may try; if none does, the request gets 401.
Tokens are looked up by their SHA-256 digest and then compared with ``hmac.compare_digest``,
so the comparison time does not depend on how much of a guess is right.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from kapi import AuthnRequest, UserInfo, hookimpl

if TYPE_CHECKING:
    from kapi import App

PLUGIN_NAME = "authn_token_file"
ALIASES = ("token-file",)

log = logging.getLogger(__name__)

TokenTable = Mapping[bytes, tuple[bytes, UserInfo]]


class TokenFileError(ValueError):
    """The token file cannot be used; the message names the file and line, never a token."""


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def parse_token_file(text: str, source: str) -> dict[bytes, tuple[bytes, UserInfo]]:
    """Parse the CSV ``text`` (read from ``source``, used in messages) into a lookup table:
    SHA-256 of the token -> (token, user).

    :raises TokenFileError: a line with fewer than 3 columns, an empty user name, or bad CSV.
    """
    table: dict[bytes, tuple[bytes, UserInfo]] = {}
    reader = csv.reader(io.StringIO(text), skipinitialspace=True, strict=True)
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not field.strip() for field in record):
                continue
            if len(record) < 3:
                raise TokenFileError(f"token file {source!r} line {line}: need at least 3 columns "
                                     f"(token, user name, uid), found {len(record)}")
            token, name, uid = record[0].strip(), record[1].strip(), record[2].strip()
            if not token:
                log.warning("token file %r line %d: empty token, line skipped", source, line)
                continue
            if not name:
                raise TokenFileError(f"token file {source!r} line {line}: the user name (column 2) is empty")
            groups = tuple(g.strip() for g in record[3].split(",") if g.strip()) if len(record) > 3 else ()
            raw = token.encode()
            key = _digest(raw)
            if key in table:
                log.warning("token file %r line %d: duplicate token, this line wins", source, line)
            table[key] = (raw, UserInfo(name=name, uid=uid, groups=groups))
    except csv.Error as err:
        raise TokenFileError(f"token file {source!r} line {reader.line_num}: malformed CSV ({err})") from None
    return table


def load_token_file(path: str) -> dict[bytes, tuple[bytes, UserInfo]]:
    """Read and parse the token file at ``path``. :raises TokenFileError: unreadable or malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise TokenFileError(f"token file {path!r} cannot be read: {err}") from None
    return parse_token_file(text, path)


def lookup(table: TokenTable, token: str) -> UserInfo | None:
    """The user of ``token``, or None; constant-time in the token's content."""
    raw = token.encode()
    found = table.get(_digest(raw))
    if found is None or not hmac.compare_digest(found[0], raw):
        return None
    return found[1]


@hookimpl
def kapi_startup(app: App) -> None:
    """Load ``config.token_auth_file`` (when set) into this plugin's state."""
    path = app.config.token_auth_file
    tokens = load_token_file(path) if path else {}
    app.plugin_state(PLUGIN_NAME)["tokens"] = tokens
    if path:
        log.info("token file %r: %d tokens loaded", path, len(tokens))


@hookimpl
def kapi_authenticate(request: AuthnRequest, app: App) -> UserInfo | None:
    """The user of the request's bearer token if the token file lists it, else None."""
    token = request.bearer_token()
    if token is None:
        return None
    table: TokenTable | None = app.plugin_state(PLUGIN_NAME).get("tokens")
    return lookup(table, token) if table else None
