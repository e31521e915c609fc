"""Review APIs of authentication.k8s.io/v1, answered on create and never stored.

* ``TokenReview`` (``POST /apis/authentication.k8s.io/v1/tokenreviews``): runs the app's
  authenticator chain on ``spec.token`` as if it came in an ``Authorization: Bearer`` header of a
  request without a client certificate. ``status`` is ``{authenticated: true, user, audiences}``
  for a recognised token (groups include ``system:authenticated``), ``{user: {}}`` for an unknown
  one (anonymous does not count) and ``{user: {}, error}`` when an authenticator rejected it
  (its message, which never contains the token). An empty token is a 400.
  ``status.audiences`` are the requested ``spec.audiences`` that the API server serves, or the
  API audiences when none are requested; a request whose audiences are all foreign to the API
  server is answered unauthenticated (authenticators cannot yet be asked about other audiences).
* ``SelfSubjectReview`` (``POST /apis/authentication.k8s.io/v1/selfsubjectreviews``): returns
  the caller's own identity in ``status.userInfo`` (``kubectl auth whoami``, which posts it as
  protobuf: the body carries nothing to read, so it is not decoded).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kapi import errors, hooks
from kapi.kinds.access import as_dict, as_list
from kapi.rest import body
from kapi.rest.context import Ctx, json_response
from kapi.rest.tokens import api_audiences
from kapi.types import ANONYMOUS, AUTHENTICATED, AuthnRequest, UserInfo


async def _review(ctx: Ctx) -> dict[str, Any]:
    from kapi.rest.write import read_object

    review = await read_object(ctx)
    review.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    return review


async def authenticate_token(ctx: Ctx, token: str) -> tuple[UserInfo | None, str]:
    """Run the authenticator chain on a bearer ``token``: ``(user, "")``, ``(None, "")`` when no
    authenticator recognises it (or only anonymous does), or ``(None, error)`` when one rejects it."""
    request = AuthnRequest(method="POST", path=ctx.info.path, headers={"authorization": f"Bearer {token}"})
    try:
        _, user = await hooks.call_first("kapi_authenticate", ctx.app.chains.authenticate, request=request,
                                         app=ctx.app)
    except errors.APIError as err:
        if err.code != 401:
            raise
        return None, err.message
    if not isinstance(user, UserInfo) or user.name == ANONYMOUS:
        return None, ""
    if AUTHENTICATED not in user.groups:
        user = UserInfo(user.name, user.uid, (*user.groups, AUTHENTICATED), user.extra)
    return user, ""


async def token_review(ctx: Ctx) -> Response:
    """POST tokenreviews: who does ``spec.token`` authenticate as?"""
    review = await _review(ctx)
    spec = as_dict(review.get("spec"))
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise errors.bad_request("token is required for TokenReview in authentication")
    served = api_audiences(ctx.app)
    requested = [str(a) for a in as_list(spec.get("audiences"))]
    audiences = [a for a in requested if a in served] if requested else list(served)
    status: dict[str, Any] = {"user": {}}
    if audiences:
        user, error = await authenticate_token(ctx, token)
        if user is not None:
            status = {"authenticated": True, "user": user.to_dict(), "audiences": audiences}
        elif error:
            status["error"] = error
    review["status"] = status
    return json_response(review, 201)


async def self_subject_review(ctx: Ctx) -> Response:
    """POST selfsubjectreviews: the caller's own user info. The request carries nothing else, so
    its body is read (within the size limit) but not decoded: kubectl sends it as protobuf."""
    await body.read_body(ctx.request, ctx.app.config.max_request_body_bytes)
    return json_response({"kind": "SelfSubjectReview", "apiVersion": ctx.rt.group_version,
                          "metadata": {"creationTimestamp": None}, "status": {"userInfo": ctx.user.to_dict()}}, 201)


REVIEWS = {"tokenreviews": token_review, "selfsubjectreviews": self_subject_review}
