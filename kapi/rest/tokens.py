"""The TokenRequest API: ``POST /api/v1/namespaces/NS/serviceaccounts/NAME/token``.

What ``kubectl create token NAME [--duration D] [--audience A] [--bound-object-kind Pod|Secret|Node
--bound-object-name N [--bound-object-uid U]]`` calls. kubectl posts the TokenRequest as protobuf,
which is decoded here (``token_request_from_protobuf``); JSON and YAML work too. The answer is the posted
``authentication.k8s.io/v1`` TokenRequest with ``status.token`` (a JWT) and
``status.expirationTimestamp``, as kube-apiserver writes it:

* header ``{"alg": "RS256" | "ES256" | "ES384" | "ES512", "kid": <kid>}``, where the kid is the
  unpadded base64url SHA-256 of the signing key's PKIX public key (what ``/openid/v1/jwks``
  lists);
* claims ``iss`` (the first service-account issuer), ``sub`` (``system:serviceaccount:NS:NAME``),
  ``aud`` (``spec.audiences``, default the API audiences), ``iat`` = ``nbf`` = now, ``exp`` = now +
  ``spec.expirationSeconds`` (default 3600, at least 600, at most 2^32, cut to
  ``--service-account-max-token-expiration``), ``jti`` (a UUID), and ``kubernetes.io``:
  ``{namespace, serviceaccount: {name, uid}, pod | secret | node: {name, uid}}``; a token bound to a
  scheduled pod also names the pod's node.

Errors: the service account or the bound object does not exist (404); a bound ``uid`` that
differs (409); a pod running as another service account, or an unsupported bound kind (400);
an out-of-range expiration or a body naming another account (422). Without a signing key the API
answers 404 naming the flag to set.

Settings come from the ``authn_service_account`` section of ``config.plugin_options`` (the
plugin of that name registers kube-apiserver's flags): ``issuer`` (first one signs; default
``https://kubernetes.default.svc.cluster.local``), ``api_audiences`` (default the issuers),
``signing_key_file`` (default ``DATA_DIR/pki/sa.key``), ``max_token_expiration`` (seconds). The
parsed signing key is kept in ``app.state`` and re-read when the file changes.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.responses import Response

from kapi import errors
from kapi.kinds.access import as_dict, as_list
from kapi.rest import body
from kapi.rest.context import Ctx, json_response
from kapi.storage import KeyNotFoundError
from kapi.timestamps import rfc3339

if TYPE_CHECKING:
    from kapi.app import App

SECTION = "authn_service_account"
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32
_SIGNER_STATE = "kapi.rest.tokens.signer"
_EC_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_BINDABLE = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}
PROTOBUF = "application/vnd.kubernetes.protobuf"


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return tuple(s.strip() for s in items if s.strip())


@dataclass(frozen=True)
class TokenSettings:
    """What issuing a token needs from the ``authn_service_account`` settings section."""

    issuer: str
    audiences: tuple[str, ...]
    signing_key_file: str
    max_expiration: int


def token_settings(app: App) -> TokenSettings:
    """The token-issuing settings of ``app`` (defaults in the module docstring)."""
    options: Mapping[str, Any] = app.config.options_for(SECTION)
    issuers = _strings(options.get("issuer")) or (DEFAULT_ISSUER,)
    max_expiration = options.get("max_token_expiration") or 0
    return TokenSettings(issuer=issuers[0], audiences=_strings(options.get("api_audiences")) or issuers,
                         signing_key_file=str(options.get("signing_key_file")
                                              or Path(app.config.data_dir) / "pki" / "sa.key"),
                         max_expiration=int(max_expiration))


def api_audiences(app: App) -> tuple[str, ...]:
    """The API server's audiences (``--api-audiences``, default the service-account issuers)."""
    return token_settings(app).audiences


@dataclass(frozen=True)
class Signer:
    """A loaded signing key: the joserfc key, its JWS algorithm and its kid."""

    key: Any
    alg: str
    kid: str

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A compact JWS of ``claims`` (header: alg and kid, no typ, as kube-apiserver writes)."""
        return jwt.encode({"alg": self.alg, "kid": self.kid}, dict(claims), self.key, algorithms=[self.alg],
                          default_type=None)


def load_signer(data: bytes) -> Signer:
    """A ``Signer`` from a PEM private key (RSA, or ECDSA P-256/384/521).

    :raises ValueError: not such a key (the message never contains key material).
    """
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an unencrypted PEM private key ({type(exc).__name__})") from None
    if isinstance(private, rsa.RSAPrivateKey):
        key: Any = RSAKey.import_key(data)
        alg = "RS256"
    elif isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name in _EC_ALGS:
        key = ECKey.import_key(data)
        alg = _EC_ALGS[private.curve.name]
    else:
        raise ValueError("only RSA and ECDSA (P-256, P-384, P-521) signing keys are supported")
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    return Signer(key, alg, kid)


def signer_of(app: App, path: str) -> Signer:
    """The signer for the key file at ``path``, cached in ``app.state`` until the file changes.

    :raises APIError: 404 when there is no usable signing key (TokenRequest is then off).
    """
    try:
        stamp = Path(path).stat().st_mtime_ns
    except OSError:
        raise errors.APIError(404, "NotFound", f"the TokenRequest API is off: the service-account signing key "
                                               f"{path!r} does not exist (set --service-account-signing-key-file)"
                              ) from None
    cached = app.state.get(_SIGNER_STATE)
    if cached is not None and cached[0] == (path, stamp):
        return cached[1]  # type: ignore[no-any-return]
    try:
        signer = load_signer(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise errors.APIError(404, "NotFound", f"the TokenRequest API is off: the service-account signing key "
                                               f"{path!r} cannot be used: {exc}") from None
    app.state[_SIGNER_STATE] = ((path, stamp), signer)
    return signer


async def _stored(app: App, resource: str, namespace: str, name: str) -> dict[str, Any]:
    rt = app.registry.lookup("", "v1", resource)
    if rt is None:
        raise errors.not_found("", resource, name)
    try:
        kv = await app.storage.get(rt.key(app.root, namespace, name))
    except KeyNotFoundError:
        raise errors.not_found("", resource, name) from None
    obj = orjson.loads(kv.value)
    return obj if isinstance(obj, dict) else {}


def _uid(obj: Mapping[str, Any]) -> str:
    return str(as_dict(obj.get("metadata")).get("uid", ""))


def _invalid(name: str, path: str, message: str) -> errors.APIError:
    return errors.invalid("authentication.k8s.io", "TokenRequest", name, (errors.Cause(path, message),))


def _expiration(ctx: Ctx, spec: Mapping[str, Any], settings: TokenSettings) -> int:
    raw = spec.get("expirationSeconds")
    if raw is None:
        seconds = DEFAULT_EXPIRATION
    elif isinstance(raw, bool) or not isinstance(raw, int):
        raise _invalid(ctx.name, "spec.expirationSeconds", f"Invalid value: {raw!r}: must be an integer")
    else:
        seconds = raw
    if seconds < MIN_EXPIRATION:
        raise _invalid(ctx.name, "spec.expirationSeconds",
                       f"Invalid value: {seconds}: may not specify a duration less than 10 minutes")
    if seconds > MAX_EXPIRATION:
        raise _invalid(ctx.name, "spec.expirationSeconds",
                       f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds")
    if settings.max_expiration > 0:
        seconds = min(seconds, settings.max_expiration)
    return seconds


async def _bound_claims(ctx: Ctx, ref: Mapping[str, Any]) -> dict[str, Any]:
    """The ``kubernetes.io`` claims naming the bound object (and a pod's node)."""
    kind, version = ref.get("kind"), ref.get("apiVersion") or "v1"
    if kind not in _BINDABLE or version != "v1":
        raise errors.bad_request(f"cannot bind token to object of type {version}, Kind={kind}")
    name = ref.get("name")
    if not isinstance(name, str) or not name:
        raise _invalid(ctx.name, "spec.boundObjectRef.name", "Required value")
    resource = _BINDABLE[kind]
    obj = await _stored(ctx.app, resource, ctx.namespace if kind != "Node" else "", name)
    uid = _uid(obj)
    if ref.get("uid") and ref["uid"] != uid:
        raise errors.conflict("", resource, name, f"the UID in the bound object reference ({ref['uid']}) does not "
                              f"match the UID in record. The object might have been deleted and then recreated")
    claims: dict[str, Any] = {kind.lower(): {"name": name, "uid": uid}}
    if kind == "Pod":
        spec = as_dict(obj.get("spec"))
        if (spec.get("serviceAccountName") or "default") != ctx.name:
            raise errors.bad_request(f'cannot bind token for serviceaccount "{ctx.name}" to pod running with '
                                     f'different serviceaccount name.')
        node_name = spec.get("nodeName")
        if isinstance(node_name, str) and node_name:
            try:
                node = await _stored(ctx.app, "nodes", "", node_name)
            except errors.APIError:
                node = None
            if node is not None:
                claims["node"] = {"name": node_name, "uid": _uid(node)}
    return claims


def _rfc3339(seconds: float) -> str:
    return rfc3339(datetime.datetime.fromtimestamp(seconds, datetime.UTC))


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(data: bytes) -> dict[int, list[Any]]:
    """A protobuf message's fields: number -> values (ints for varints, bytes otherwise)."""
    out: dict[int, list[Any]] = {}
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        wire, size = key & 7, {1: 8, 5: 4}.get(key & 7, 0)
        value: int | bytes
        if wire == 0:
            value, at = _varint(data, at)
        else:
            if wire == 2:
                size, at = _varint(data, at)
            elif not size:
                raise ValueError(f"unsupported wire type {wire}")
            value, at = data[at:at + size], at + size
            if at > len(data):
                raise ValueError("truncated field")
        out.setdefault(key >> 3, []).append(value)
    return out


def _text(fields: dict[int, list[Any]], number: int) -> str:
    values = fields.get(number)
    return bytes(values[-1]).decode() if values else ""


def token_request_from_protobuf(data: bytes) -> dict[str, Any]:
    """Decode a protobuf TokenRequest (what ``kubectl create token`` sends) into its JSON shape.

    The body is ``k8s\\x00`` + runtime.Unknown{typeMeta{apiVersion=1, kind=2}, raw=2}; raw is
    TokenRequest{metadata=1{name=1, namespace=3}, spec=2{audiences=1, boundObjectRef=3{kind=1,
    apiVersion=2, name=3, uid=4}, expirationSeconds=4}}.

    :raises APIError: 400 when the body is not such a message.
    """
    try:
        if not data.startswith(b"k8s\x00"):
            raise ValueError("missing the k8s protobuf envelope")
        unknown = _fields(data[4:])
        type_meta = _fields(unknown.get(1, [b""])[-1])
        message = _fields(unknown.get(2, [b""])[-1])
        meta = _fields(message.get(1, [b""])[-1])
        spec = _fields(message.get(2, [b""])[-1])
        out_spec: dict[str, Any] = {"audiences": [bytes(a).decode() for a in spec.get(1, [])]}
        if 4 in spec:
            seconds = int(spec[4][-1])
            out_spec["expirationSeconds"] = seconds - (1 << 64) if seconds >= 1 << 63 else seconds
        if 3 in spec:
            ref = _fields(spec[3][-1])
            out_spec["boundObjectRef"] = {"kind": _text(ref, 1), "apiVersion": _text(ref, 2), "name": _text(ref, 3),
                                          "uid": _text(ref, 4)}
        return {"apiVersion": _text(type_meta, 1) or "authentication.k8s.io/v1",
                "kind": _text(type_meta, 2) or "TokenRequest",
                "metadata": {"name": _text(meta, 1), "namespace": _text(meta, 3)}, "spec": out_spec}
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"the protobuf TokenRequest cannot be decoded: {exc}") from None


async def read_token_request(ctx: Ctx) -> dict[str, Any]:
    """The posted TokenRequest, from JSON, YAML or protobuf (kubectl sends protobuf)."""
    data = await body.read_body(ctx.request, ctx.app.config.max_request_body_bytes)
    content_type = ctx.request.headers.get("content-type", "application/json")
    if body.media_type(content_type) == PROTOBUF:
        return token_request_from_protobuf(data)
    return body.decode_object(data, content_type)


async def create_token(ctx: Ctx) -> Response:
    """POST serviceaccounts/NAME/token: sign a bound service-account token (TokenRequest)."""
    request = await read_token_request(ctx)
    if request.get("kind", "TokenRequest") != "TokenRequest" or \
            request.get("apiVersion", "authentication.k8s.io/v1") != "authentication.k8s.io/v1":
        raise errors.bad_request(f"expected an authentication.k8s.io/v1 TokenRequest, got "
                                 f"{request.get('apiVersion')} {request.get('kind')}")
    meta = as_dict(request.get("metadata"))
    if meta.get("name") and meta["name"] != ctx.name:
        raise _invalid(ctx.name, "metadata.name", "must match the service account name if specified")
    if meta.get("namespace") and meta["namespace"] != ctx.namespace:
        raise _invalid(ctx.name, "metadata.namespace", "must match the service account namespace if specified")
    spec = as_dict(request.get("spec"))
    settings = token_settings(ctx.app)
    signer = signer_of(ctx.app, settings.signing_key_file)
    expiration = _expiration(ctx, spec, settings)
    audiences = [str(a) for a in as_list(spec.get("audiences"))] or list(settings.audiences)
    account = await _stored(ctx.app, "serviceaccounts", ctx.namespace, ctx.name)
    kube: dict[str, Any] = {"namespace": ctx.namespace, "serviceaccount": {"name": ctx.name, "uid": _uid(account)}}
    ref = spec.get("boundObjectRef")
    if isinstance(ref, dict):
        kube.update(await _bound_claims(ctx, ref))
    now = int(time.time())
    claims = {"aud": audiences, "exp": now + expiration, "iat": now, "iss": settings.issuer, "jti": str(uuid.uuid4()),
              "kubernetes.io": kube, "nbf": now, "sub": f"system:serviceaccount:{ctx.namespace}:{ctx.name}"}
    token = signer.sign(claims)
    spec = {**spec, "audiences": audiences, "expirationSeconds": expiration}
    response = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": ctx.name, "namespace": ctx.namespace, "creationTimestamp": _rfc3339(now)},
                "spec": spec, "status": {"token": token, "expirationTimestamp": _rfc3339(now + expiration)}}
    return json_response(response, 201)
