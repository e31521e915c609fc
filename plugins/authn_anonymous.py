"""Anonymous requests (kube-apiserver's ``--anonymous-auth``), alias ``anonymous``.

When ``config.anonymous_auth`` is true, a request that no earlier authenticator claimed is served
as user ``system:anonymous`` in group ``system:unauthenticated`` (what it may do is then up to
the authorizers). When it is false the plugin returns None and such a request gets 401.

It answers every request it is asked about, so list it last in ``config.authenticators``. A
request whose credentials were rejected (an ``AuthenticationError`` from an earlier plugin) never
reaches it: a bad credential is a 401, not an anonymous request. Likewise a request that carries
an ``Authorization`` header nobody recognised is refused (401), as kube-apiserver refuses an
invalid bearer token instead of treating the caller as anonymous.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kapi import ANONYMOUS, UNAUTHENTICATED, AuthnRequest, UserInfo, hookimpl

if TYPE_CHECKING:
    from kapi import App

PLUGIN_NAME = "authn_anonymous"
ALIASES = ("anonymous",)
ANONYMOUS_USER = UserInfo(name=ANONYMOUS, groups=(UNAUTHENTICATED,))


@hookimpl
def kapi_authenticate(request: AuthnRequest, app: App) -> UserInfo | None:
    """``system:anonymous`` when anonymous requests are allowed and no credential was sent, else None."""
    if not app.config.anonymous_auth or request.headers.get("authorization"):
        return None
    return ANONYMOUS_USER
