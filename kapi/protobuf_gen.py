"""Build ``kapi/data/k8s_proto_fields.json`` from Kubernetes ``generated.proto`` files (a developer tool).

Not used at run time: ``kapi.protobuf`` only reads the JSON table this module writes. Run it after
refreshing the ``.proto`` inputs (``staging/src/k8s.io/api/<group>/<version>/generated.proto`` and
``staging/src/k8s.io/apimachinery/pkg/.../generated.proto`` of a Kubernetes release; only the
``message`` blocks matter, comments may be stripped except ``+protobuf.nullable=true``)::

    python -m kapi.protobuf_gen PROTO_FILE... -o kapi/data/k8s_proto_fields.json [--check]

The table is ``{"messages": {FULL_NAME: {FIELD_NUMBER: [json_name, type, cardinality, keep]}},
"list_wrappers": [FULL_NAME, ...]}`` where

* ``json_name`` is the proto field name, which go-to-protobuf takes from the JSON tag, except a few
  old spellings (``aPIVersion``, ``uID``, ``Webhooks``, ``Expression``) that are mapped to the JSON
  property of the same name ignoring case, found in the OpenAPI definitions ``kubernetes-validate``
  ships;
* ``type`` is a protobuf scalar type (``string``, ``bytes``, ``int32``, ``int64``, ``bool``, ...) or
  the full name of a message (``k8s.io.api.core.v1.PodSpec``); for a map it is the value type;
* ``cardinality`` is ``"1"`` (singular), ``"*"`` (repeated), ``"map:KEYTYPE"`` (a ``map<K, V>``,
  sent as repeated entries ``{key = 1, value = 2}``) or ``"inline"``: a Go struct embedded with
  ``json:",inline"`` (``LocalObjectReference`` in ``SecretKeySelector``, ``VolumeSource`` in
  ``Volume``...), whose fields belong to the enclosing JSON object. go-to-protobuf names such a field
  after the Go type, so it is recognised as a message field that is not a JSON property of the
  enclosing type while all the JSON properties it brings are;
* ``keep`` is 1 when a zero value (``0``, ``false``, ``""``) sent on the wire is meaningful and must
  be kept: the field is a Go pointer (``POINTER_FIELDS`` below: ``spec.replicas`` 0, ``suspend``
  false, ``storageClassName`` "" ...) or a required JSON property (no ``omitempty``, so the JSON form
  always carries it, e.g. ``PriorityClass.value`` 0). Other zero scalars are dropped by the decoder,
  as ``omitempty`` drops them from JSON: gogo-protobuf writes every non-pointer field, zero or not;
* ``list_wrappers`` are messages that stand for a named Go slice (``+protobuf.nullable=true``, a single
  ``repeated items = 1``, e.g. ``meta.v1.Verbs``, ``authorization.v1.ExtraValue``): in JSON they are
  the bare list.

``--check`` compares every message with its OpenAPI definition and prints JSON properties that have no
proto field (a stale ``.proto``) and proto fields that are not JSON properties (a typo, or a removed
field), and ``POINTER_FIELDS`` entries that name no field.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCALARS = frozenset({"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
                     "fixed32", "fixed64", "sfixed32", "sfixed64", "double", "float"})
NULLABLE_MARKER = "+protobuf.nullable=true"

_CORE = "k8s.io.api.core.v1."
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
# Scalar fields whose zero value is meaningful although the OpenAPI does not mark them required: Go
# pointers in k8s.io/api types.go (present on the wire means "set") and a few non-pointer fields without
# omitempty (PriorityClass.value). Keyed by message full name; values are JSON names.
POINTER_FIELDS: Mapping[str, frozenset[str]] = {name: frozenset(fields.split()) for name, fields in {
    _CORE + "ConfigMap": "immutable",
    _CORE + "Secret": "immutable",
    _CORE + "ConfigMapEnvSource": "optional",
    _CORE + "ConfigMapKeySelector": "optional",
    _CORE + "ConfigMapProjection": "optional",
    _CORE + "ConfigMapVolumeSource": "optional defaultMode",
    _CORE + "SecretEnvSource": "optional",
    _CORE + "SecretKeySelector": "optional",
    _CORE + "SecretProjection": "optional",
    _CORE + "SecretVolumeSource": "optional defaultMode",
    _CORE + "DownwardAPIVolumeSource": "defaultMode",
    _CORE + "DownwardAPIVolumeFile": "mode",
    _CORE + "KeyToPath": "mode",
    _CORE + "ProjectedVolumeSource": "defaultMode",
    _CORE + "ClusterTrustBundleProjection": "optional name signerName",
    _CORE + "FileKeySelector": "optional",
    _CORE + "CSIVolumeSource": "readOnly fsType",
    _CORE + "PodSpec": ("terminationGracePeriodSeconds activeDeadlineSeconds automountServiceAccountToken "
                        "shareProcessNamespace priority enableServiceLinks preemptionPolicy setHostnameAsFQDN "
                        "hostUsers hostnameOverride runtimeClassName"),
    _CORE + "PodSecurityContext": ("runAsUser runAsGroup runAsNonRoot fsGroup fsGroupChangePolicy "
                                   "supplementalGroupsPolicy seLinuxChangePolicy"),
    _CORE + "SecurityContext": ("privileged runAsUser runAsGroup runAsNonRoot readOnlyRootFilesystem "
                                "allowPrivilegeEscalation procMount"),
    _CORE + "WindowsSecurityContextOptions": "gmsaCredentialSpecName gmsaCredentialSpec runAsUserName hostProcess",
    _CORE + "SeccompProfile": "localhostProfile",
    _CORE + "AppArmorProfile": "localhostProfile",
    _CORE + "Container": "restartPolicy",
    _CORE + "EphemeralContainerCommon": "restartPolicy",
    _CORE + "Probe": "terminationGracePeriodSeconds",
    _CORE + "Lifecycle": "stopSignal",
    _CORE + "VolumeMount": "mountPropagation recursiveReadOnly",
    _CORE + "ServiceSpec": ("allocateLoadBalancerNodePorts ipFamilyPolicy loadBalancerClass internalTrafficPolicy "
                            "trafficDistribution"),
    _CORE + "ServicePort": "appProtocol",
    _CORE + "EndpointPort": "appProtocol",
    _CORE + "ClientIPConfig": "timeoutSeconds",
    _CORE + "ReplicationControllerSpec": "replicas",
    _CORE + "PersistentVolumeClaimSpec": "storageClassName volumeMode volumeAttributesClassName",
    _CORE + "PersistentVolumeSpec": "volumeMode volumeAttributesClassName",
    _CORE + "PersistentVolumeClaimStatus": "currentVolumeAttributesClassName",
    _CORE + "ServiceAccount": "automountServiceAccountToken",
    _CORE + "ServiceAccountTokenProjection": "expirationSeconds",
    _CORE + "Toleration": "tolerationSeconds",
    _CORE + "TopologySpreadConstraint": "minDomains nodeAffinityPolicy nodeTaintsPolicy",
    _CORE + "HostPathVolumeSource": "type",
    _CORE + "ISCSIVolumeSource": "initiatorName",
    _CORE + "ISCSIPersistentVolumeSource": "initiatorName",
    _CORE + "LoadBalancerIngress": "ipMode",
    _CORE + "LocalVolumeSource": "fsType",
    _CORE + "PodLogOptions": "sinceSeconds tailLines limitBytes stream",
    _CORE + "GRPCAction": "service",
    _CORE + "ContainerStatus": "started stopSignal",
    _CORE + "PodResourceClaim": "resourceClaimName resourceClaimTemplateName",
    _CORE + "PodResourceClaimStatus": "resourceClaimName",
    _CORE + "TypedObjectReference": "apiGroup namespace",
    _CORE + "TypedLocalObjectReference": "apiGroup",
    _CORE + "PodCertificateProjection": "maxExpirationSeconds",
    _CORE + "NodeFeatures": "supplementalGroupsPolicy",
    _CORE + "NodeRuntimeHandlerFeatures": "recursiveReadOnlyMounts userNamespaces",
    _CORE + "NodeSwapStatus": "capacity",
    _META + "DeleteOptions": "gracePeriodSeconds orphanDependents propagationPolicy",
    _META + "ObjectMeta": "deletionGracePeriodSeconds",
    _META + "OwnerReference": "controller blockOwnerDeletion",
    _META + "ListMeta": "remainingItemCount",
    _META + "Preconditions": "uid resourceVersion",
    _META + "ListOptions": "timeoutSeconds sendInitialEvents",
    _META + "PatchOptions": "force",
    "k8s.io.api.apps.v1.DeploymentSpec": "replicas revisionHistoryLimit progressDeadlineSeconds",
    "k8s.io.api.apps.v1.ReplicaSetSpec": "replicas",
    "k8s.io.api.apps.v1.StatefulSetSpec": "replicas revisionHistoryLimit",
    "k8s.io.api.apps.v1.DaemonSetSpec": "revisionHistoryLimit",
    "k8s.io.api.apps.v1.RollingUpdateStatefulSetStrategy": "partition",
    "k8s.io.api.apps.v1.DaemonSetStatus": "collisionCount",
    "k8s.io.api.apps.v1.DeploymentStatus": "collisionCount terminatingReplicas",
    "k8s.io.api.apps.v1.ReplicaSetStatus": "terminatingReplicas",
    "k8s.io.api.apps.v1.StatefulSetStatus": "collisionCount",
    "k8s.io.api.batch.v1.JobSpec": ("parallelism completions activeDeadlineSeconds backoffLimit backoffLimitPerIndex "
                                    "maxFailedIndexes manualSelector ttlSecondsAfterFinished completionMode suspend "
                                    "podReplacementPolicy managedBy"),
    "k8s.io.api.batch.v1.JobStatus": "terminating failedIndexes ready",
    "k8s.io.api.batch.v1.CronJobSpec": ("timeZone startingDeadlineSeconds suspend successfulJobsHistoryLimit "
                                        "failedJobsHistoryLimit"),
    "k8s.io.api.batch.v1.PodFailurePolicyOnExitCodesRequirement": "containerName",
    "k8s.io.api.batch.v1.SuccessPolicyRule": "succeededIndexes succeededCount",
    "k8s.io.api.coordination.v1.LeaseSpec": ("holderIdentity leaseDurationSeconds leaseTransitions strategy "
                                             "preferredHolder"),
    "k8s.io.api.authentication.v1.TokenRequestSpec": "expirationSeconds",
    "k8s.io.api.autoscaling.v1.HorizontalPodAutoscalerSpec": "minReplicas targetCPUUtilizationPercentage",
    "k8s.io.api.autoscaling.v1.HorizontalPodAutoscalerStatus": "observedGeneration currentCPUUtilizationPercentage",
    "k8s.io.api.autoscaling.v1.ContainerResourceMetricSource": "targetAverageUtilization",
    "k8s.io.api.autoscaling.v1.ResourceMetricSource": "targetAverageUtilization",
    "k8s.io.api.autoscaling.v1.ScaleSpec": "replicas",
    "k8s.io.api.policy.v1.PodDisruptionBudgetSpec": "unhealthyPodEvictionPolicy",
    "k8s.io.api.networking.v1.NetworkPolicyPort": "endPort",
    "k8s.io.api.networking.v1.IngressSpec": "ingressClassName",
    "k8s.io.api.networking.v1.HTTPIngressPath": "pathType",
    "k8s.io.api.networking.v1.IngressClassParametersReference": "apiGroup scope namespace",
    "k8s.io.api.scheduling.v1.PriorityClass": "preemptionPolicy value",
    "k8s.io.api.storage.v1.StorageClass": "reclaimPolicy allowVolumeExpansion volumeBindingMode",
    "k8s.io.api.storage.v1.CSIDriverSpec": ("attachRequired podInfoOnMount storageCapacity fsGroupPolicy "
                                            "requiresRepublish seLinuxMount nodeAllocatableUpdatePeriodSeconds "
                                            "serviceAccountTokenInSecrets"),
    "k8s.io.api.storage.v1.VolumeAttachmentSource": "persistentVolumeName",
    "k8s.io.api.storage.v1.VolumeError": "errorCode",
    "k8s.io.api.storage.v1.VolumeNodeResources": "count",
    "k8s.io.api.admissionregistration.v1.ValidatingWebhook": "failurePolicy matchPolicy sideEffects timeoutSeconds",
    "k8s.io.api.admissionregistration.v1.MutatingWebhook": ("failurePolicy matchPolicy sideEffects timeoutSeconds "
                                                            "reinvocationPolicy"),
    "k8s.io.api.admissionregistration.v1.WebhookClientConfig": "url",
    "k8s.io.api.admissionregistration.v1.ServiceReference": "path port",
    "k8s.io.api.admissionregistration.v1.Rule": "scope",
    "k8s.io.api.admissionregistration.v1.MatchResources": "matchPolicy",
    "k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicySpec": "failurePolicy",
    "k8s.io.api.admissionregistration.v1.ParamRef": "parameterNotFoundAction",
    "k8s.io.api.certificates.v1.CertificateSigningRequestSpec": "expirationSeconds",
}.items()}

_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.MULTILINE)
_MESSAGE = re.compile(r"((?:^[ \t]*//[^\n]*\n)*)^message\s+(\w+)\s*\{(.*?)^\}", re.MULTILINE | re.DOTALL)
_FIELD = re.compile(r"^\s*(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)")
_MAP_FIELD = re.compile(r"^\s*map\s*<\s*(\w+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)")


@dataclass(frozen=True)
class ProtoField:
    """One field of a message: ``cardinality`` is ``1``, ``*``, ``map:KEYTYPE`` or ``inline``."""

    number: int
    name: str
    type: str
    cardinality: str
    keep: bool = False


@dataclass
class ProtoMessage:
    """A parsed message; ``nullable`` marks a named-slice wrapper (``+protobuf.nullable=true``)."""

    full_name: str
    fields: list[ProtoField] = field(default_factory=list)
    nullable: bool = False


def _resolve(type_name: str, package: str) -> str:
    if type_name in SCALARS:
        return type_name
    type_name = type_name.lstrip(".")
    return type_name if "." in type_name else f"{package}.{type_name}"


def parse_proto(text: str) -> list[ProtoMessage]:
    """Messages of one ``.proto`` file (proto2, no nested messages, as go-to-protobuf writes them).

    :raises ValueError: no ``package`` statement, or a line inside a message that is not understood.
    """
    package_match = _PACKAGE.search(text)
    if package_match is None:
        raise ValueError("no package statement")
    package = package_match.group(1)
    messages: list[ProtoMessage] = []
    for match in _MESSAGE.finditer(text):
        comments, name, body = match.groups()
        message = ProtoMessage(f"{package}.{name}", nullable=NULLABLE_MARKER in comments)
        for raw_line in body.splitlines():
            line = raw_line.split("//", 1)[0].strip()
            if not line:
                continue
            if found := _MAP_FIELD.match(line):
                key, value, field_name, number = found.groups()
                message.fields.append(ProtoField(int(number), field_name, _resolve(value, package), f"map:{key}"))
            elif found := _FIELD.match(line):
                label, type_name, field_name, number = found.groups()
                message.fields.append(ProtoField(int(number), field_name, _resolve(type_name, package),
                                                 "*" if label == "repeated" else "1"))
            else:
                raise ValueError(f"{message.full_name}: cannot parse {line!r}")
        messages.append(message)
    return messages


def openapi_name(full_name: str) -> str:
    """``k8s.io.api.core.v1.Pod`` -> ``io.k8s.api.core.v1.Pod`` (the OpenAPI definition name)."""
    return "io.k8s." + full_name.removeprefix("k8s.io.")


def load_openapi_definitions(version: str = "1.37.0") -> dict[str, Any]:
    """The OpenAPI (JSON schema) definitions shipped by ``kubernetes-validate`` for ``version``."""
    import kubernetes_validate  # a dependency of kapi; imported here so the parser works without it

    path = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local"
    data = json.loads((path / "_definitions.json").read_text())
    definitions: dict[str, Any] = data.get("$defs") or data.get("definitions") or {}
    return definitions


def _json_names(fields: Iterable[ProtoField], messages: Mapping[str, ProtoMessage]) -> set[str]:
    """The JSON property names a list of fields brings, inline (embedded) messages expanded."""
    names: set[str] = set()
    for item in fields:
        names |= _json_names(messages[item.type].fields, messages) if item.cardinality == "inline" else {item.name}
    return names


def _apply_openapi(messages: Mapping[str, ProtoMessage], definitions: Mapping[str, Any]) -> None:
    """Fix names spelled differently from the JSON tag, mark required fields, then inline fields."""
    for message in messages.values():
        definition = definitions.get(openapi_name(message.full_name), {})
        properties = definition.get("properties") or {}
        by_folded = {key.lower(): key for key in properties}
        required = set(definition.get("required") or ())
        for index, item in enumerate(message.fields):
            name = item.name if item.name in properties else by_folded.get(item.name.lower(), item.name)
            message.fields[index] = ProtoField(item.number, name, item.type, item.cardinality, name in required)
    changed = True
    while changed:  # nested embedding (NamedRuleWithOperations > RuleWithOperations > Rule) needs a fixpoint
        changed = False
        for message in messages.values():
            properties = set(definitions.get(openapi_name(message.full_name), {}).get("properties") or ())
            for index, item in enumerate(message.fields):
                if (properties and item.cardinality == "1" and item.type in messages and item.name not in properties
                        and _json_names(messages[item.type].fields, messages) <= properties):
                    message.fields[index] = ProtoField(item.number, item.name, item.type, "inline")
                    changed = True


def build_table(messages: Iterable[ProtoMessage], definitions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON table (see the module docstring). Without ``definitions`` names are kept as written,
    nothing is inline and only ``POINTER_FIELDS`` are kept when zero."""
    by_name = {message.full_name: message for message in messages}
    if definitions is not None:
        _apply_openapi(by_name, definitions)
    table: dict[str, Any] = {"messages": {}, "list_wrappers": []}
    for name in sorted(by_name):
        message = by_name[name]
        pointers = POINTER_FIELDS.get(name, frozenset())
        table["messages"][name] = {
            str(item.number): [item.name, item.type, item.cardinality, int(item.keep or item.name in pointers)]
            for item in sorted(message.fields, key=lambda item: item.number)}
        if message.nullable:
            table["list_wrappers"].append(name)
    return table


def _table_json_names(table: Mapping[str, Any], name: str) -> set[str]:
    names: set[str] = set()
    for json_name, type_name, cardinality, _keep in table["messages"][name].values():
        names |= _table_json_names(table, type_name) if cardinality == "inline" else {json_name}
    return names


def check_against_openapi(table: Mapping[str, Any], definitions: Mapping[str, Any]) -> list[str]:
    """Differences between the table and the OpenAPI definitions, one line each (empty when they agree),
    and ``POINTER_FIELDS`` entries that name no field of the table."""
    problems: list[str] = []
    for name in table["messages"]:
        definition = definitions.get(openapi_name(name))
        if definition is None or "properties" not in definition:
            continue
        properties = set(definition["properties"])
        names = _table_json_names(table, name)
        problems += [f"{name}: JSON property {missing!r} has no proto field"
                     for missing in sorted(properties - names - {"apiVersion", "kind"})]
        problems += [f"{name}: proto field {extra!r} is not a JSON property" for extra in sorted(names - properties)]
    for name, pointers in POINTER_FIELDS.items():
        known = {entry[0] for entry in table["messages"].get(name, {}).values()}
        problems += [f"POINTER_FIELDS[{name!r}]: no field {pointer!r}" for pointer in sorted(pointers - known)]
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m kapi.protobuf_gen", description=__doc__.split("\n\n")[0])
    parser.add_argument("protos", nargs="+", type=Path, help="generated.proto files")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the JSON table")
    parser.add_argument("--check", action="store_true", help="compare with the OpenAPI definitions")
    args = parser.parse_args(argv)
    messages = [message for path in args.protos for message in parse_proto(path.read_text())]
    definitions = load_openapi_definitions()
    table = build_table(messages, definitions)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(table, separators=(",", ":")) + "\n")
    print(f"wrote {len(table['messages'])} messages to {args.output}")
    if args.check:
        problems = check_against_openapi(table, definitions)
        print("\n".join(problems) or "the table agrees with the OpenAPI definitions")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
