"""ABAC authorizer (``--authorization-mode=ABAC``): attribute-based policies from a file.

``--authorization-policy-file=FILE`` holds one JSON policy per line (blank lines and lines starting
with ``#`` are skipped), in kube-apiserver's format::

    {"apiVersion": "abac.authorization.kubernetes.io/v1beta1", "kind": "Policy",
     "spec": {"user": "alice", "namespace": "*", "resource": "*", "apiGroup": "*"}}
    {"apiVersion": "abac.authorization.kubernetes.io/v1beta1", "kind": "Policy",
     "spec": {"group": "system:authenticated", "readonly": true, "nonResourcePath": "*"}}

A request is allowed when one policy matches it; otherwise this authorizer has no opinion.

* subject: ``user`` (exact name) and/or ``group`` (one of the user's groups); ``*`` for either
  means every authenticated user (as kube converts it: group ``system:authenticated``);
* ``readonly: true`` limits the policy to ``get``, ``list`` and ``watch``;
* resource requests match ``namespace``, ``resource`` and ``apiGroup`` (each exact or ``*``);
* non-resource requests match ``nonResourcePath``: exact, ``*``, or a prefix ending in ``*``.

The legacy unversioned lines (``{"user": "bob", "readonly": true}``) are read as kube reads them:
no subject means every authenticated user, empty namespace and resource mean all of them (and then
every non-resource path), and any API group matches.

A malformed line stops the server from starting with the file name and line number. Options
(``config.plugin_options["authz_abac"]``): ``policy_file``. ``rules_for`` lists a user's matching
policies as rules (``kubectl auth can-i --list``).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from kapi import AUTHENTICATED, Decision, RequestAttributes, UserInfo, hookimpl

if TYPE_CHECKING:
    from kapi import App

ALIASES = ("ABAC",)
PLUGIN = "authz_abac"
API_VERSION = "abac.authorization.kubernetes.io/v1beta1"
_FIELDS = {"user": "user", "group": "group", "readonly": "readonly", "apiGroup": "api_group",
           "resource": "resource", "namespace": "namespace", "nonResourcePath": "non_resource_path"}


class PolicyFileError(ValueError):
    """The policy file cannot be used; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Policy:
    """One ABAC policy (the internal form, after kube's version conversion)."""

    user: str = ""
    group: str = ""
    readonly: bool = False
    api_group: str = ""
    resource: str = ""
    namespace: str = ""
    non_resource_path: str = ""

    def subject_matches(self, user: UserInfo) -> bool:
        """``subjectMatches``: every given subject field must match, and one must be given."""
        matched = False
        if self.user:
            if self.user != "*" and self.user != user.name:
                return False
            matched = True
        if self.group:
            if self.group != "*" and self.group not in user.groups:
                return False
            matched = True
        return matched

    def matches(self, a: RequestAttributes) -> bool:
        """``matches``: subject, then verb (read-only policies), then resource or path."""
        if not self.subject_matches(a.user) or (self.readonly and not a.is_read_only):
            return False
        if a.is_resource_request:
            return (self.namespace in ("*", a.namespace) and self.resource in ("*", a.resource)
                    and self.api_group in ("*", a.api_group))
        path = self.non_resource_path
        return path == "*" or path == a.path or (path.endswith("*") and a.path.startswith(path.rstrip("*")))


def _policy(fields: Mapping[str, Any], where: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in fields.items():
        name = _FIELDS.get(key)
        if name is None:
            continue
        if name == "readonly":
            if not isinstance(value, bool):
                raise PolicyFileError(f"{where}: readonly must be true or false")
        elif not isinstance(value, str):
            raise PolicyFileError(f"{where}: {key} must be a string")
        values[name] = value
    return values


def parse_line(data: Any, where: str) -> Policy:
    """One decoded line -> Policy, converting v1beta1 and the legacy unversioned form like kube.

    :raises PolicyFileError: unknown apiVersion/kind or wrongly typed fields.
    """
    if not isinstance(data, Mapping):
        raise PolicyFileError(f"{where}: expected a JSON object")
    version = data.get("apiVersion")
    if version is None and "kind" not in data:
        values = _policy(data, where)
        user, group = values.get("user", ""), values.get("group", "")
        if (not user and not group) or user == "*" or group == "*":
            values["user"], values["group"] = "", AUTHENTICATED
        namespace, resource = values.get("namespace", ""), values.get("resource", "")
        values.update(namespace=namespace or "*", resource=resource or "*", api_group="*",
                      non_resource_path="*" if not namespace and not resource else "")
        return Policy(**values)
    if version != API_VERSION or data.get("kind") != "Policy":
        raise PolicyFileError(f'{where}: expected apiVersion "{API_VERSION}" and kind "Policy"')
    spec = data.get("spec")
    if not isinstance(spec, Mapping):
        raise PolicyFileError(f"{where}: spec is required")
    values = _policy(spec, where)
    if values.get("user") == "*" or values.get("group") == "*":
        values["user"], values["group"] = "", AUTHENTICATED
    return Policy(**values)


def load_policies(path: str | Path) -> tuple[Policy, ...]:
    """Read a policy file. :raises PolicyFileError: unreadable file or a malformed line."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise PolicyFileError(f"cannot read the policy file {path}: {exc.strerror or exc}") from None
    policies = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"policy file {path}, line {number}"
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise PolicyFileError(f"{where}: not valid JSON ({exc})") from None
        policies.append(parse_line(data, where))
    return tuple(policies)


def _policies(app: App) -> Sequence[Policy]:
    found = app.plugin_state(PLUGIN).get("policies")
    return found if isinstance(found, tuple) else ()


@hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    """``--authorization-policy-file``."""
    parser.add_argument("--authorization-policy-file", default="",
                        help="ABAC policies, one JSON object per line (used with --authorization-mode=ABAC)")


@hookimpl
def kapi_read_options(args: argparse.Namespace) -> Mapping[str, Any] | None:
    """The ``policy_file`` setting."""
    path = getattr(args, "authorization_policy_file", "")
    return {"policy_file": path} if path else None


@hookimpl
def kapi_startup(app: App) -> None:
    """Load the policy file when ABAC is an enabled authorizer."""
    if not any(impl.function is kapi_authorize for impl in app.chains.authorize):
        return
    path = str(app.config.options_for(PLUGIN).get("policy_file") or "")
    if not path:
        raise PolicyFileError("--authorization-mode=ABAC needs --authorization-policy-file")
    app.plugin_state(PLUGIN)["policies"] = load_policies(path)


@hookimpl
def kapi_authorize(attributes: RequestAttributes, app: App) -> Decision | None:
    """Allow when a policy matches; otherwise no opinion."""
    for policy in _policies(app):
        if policy.matches(attributes):
            return Decision.ALLOW
    return None


def rules_for(user: UserInfo, namespace: str, app: App) -> Mapping[str, Any]:
    """The user's matching policies as SubjectRulesReview rules (kube's ABAC ``RulesFor``)."""
    resource: list[dict[str, Any]] = []
    non_resource: list[dict[str, Any]] = []
    for policy in _policies(app):
        if not policy.subject_matches(user) or policy.namespace not in ("*", namespace):
            continue
        verbs = ["get", "list", "watch"] if policy.readonly else ["*"]
        if policy.resource:
            resource.append({"verbs": verbs, "apiGroups": [policy.api_group], "resources": [policy.resource]})
        if policy.non_resource_path:
            non_resource.append({"verbs": verbs, "nonResourceURLs": [policy.non_resource_path]})
    return {"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": False}
