"""API-key authentication for kapi: ``X-Api-Key: KEY`` names the caller.

A complete third-party kapi plugin (the template to copy): one module, registered in the ``kapi``
entry-point group by its own package (``setup.cfg``), with its own flag and config section.

Keys file (``--apikey-file PATH``, or ``--plugin-option apikey.file=PATH``, or
``plugin_options={"apikey": {"file": PATH}}`` when embedding), one key per line::

    # key,user[,group|group...]
    3f9c2e...,ci-robot,deployers|system:serviceaccounts

Enable it with ``kapi-apiserver --authentication-plugins apikey --apikey-file keys.csv``.
A request without the header is not this plugin's (the next authenticator is tried); a request
with an unknown key fails with 401 at once. Keys are kept as SHA-256 digests, never logged.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kapi

NAME = "apikey"
HEADER = "x-api-key"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(path: str) -> dict[str, kapi.UserInfo]:
    """``key digest -> user`` from a keys file. Raises ``ValueError`` naming the line."""
    users: dict[str, kapi.UserInfo] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise ValueError(f"{path}:{number}: expected key,user[,group|group]")
        groups = tuple(g for g in (parts[2].split("|") if len(parts) > 2 else ()) if g)
        users[_digest(parts[0])] = kapi.UserInfo(name=parts[1], groups=groups)
    return users


@kapi.hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--apikey-file", default="", help="API keys for the apikey authenticator: key,user[,groups]")


@kapi.hookimpl
def kapi_read_options(args: argparse.Namespace) -> Mapping[str, Any] | None:
    path = getattr(args, "apikey_file", "")
    if not path:
        return None
    if not Path(path).is_file():
        raise ValueError(f"--apikey-file {path}: no such file (plugin apikey); create it or drop the flag")
    load_keys(path)  # a malformed file stops the server at start, naming the line
    return {"file": path}


@kapi.hookimpl
def kapi_startup(app: kapi.App) -> None:
    path = app.config.options_for(NAME).get("file", "")
    app.plugin_state(NAME)["users"] = load_keys(path) if path else {}


@kapi.hookimpl
def kapi_authenticate(request: kapi.AuthnRequest, app: kapi.App) -> kapi.UserInfo | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None  # not mine: the next authenticator tries
    user = app.plugin_state(NAME).get("users", {}).get(_digest(key.strip()))
    if user is None:
        raise kapi.AuthenticationError("invalid API key")  # mine but wrong: 401, no fall-through
    kapi.trace_note(f"API key of {user.name}")
    return user
