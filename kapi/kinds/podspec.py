"""PodSpec defaulting and validation shared by pods and pod templates (deployments, replicasets).

``default_pod_spec`` is kube's ``SetDefaults_PodSpec`` plus the nested defaulters (containers,
ports, env field refs, probes, volumes), so a template in a Deployment is stored as kube stores
it; pod-only defaults (``enableServiceLinks``, requests from limits, priority) are in
``kapi.kinds.pods``. ``validate_pod_spec`` applies the rules of ``ValidatePodSpec`` that matter in
practice, with kube's field paths and messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_dict, child_dict, dicts
from kapi.kinds.formats import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    is_relaxed_env_var_name,
    is_valid_port_name,
    is_valid_port_num,
)
from kapi.kinds.quantity import QUANTITY_ERROR, parse_quantity

Obj = dict[str, Any]

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
PROTOCOLS = ("SCTP", "TCP", "UDP")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS = ("Equal", "Exists")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
VOLUME_MODE_SOURCES = ("configMap", "secret", "downwardAPI", "projected")
DEFAULT_MODE = 420  # 0644
MAX_INT32 = 2**31 - 1


# ---------------------------------------------------------------------------------------------
# defaulting


def image_pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or an untagged, undigested image; else ``IfNotPresent`` (also for a
    reference kube cannot parse, e.g. an upper-case repository path: it then has no tag)."""
    name, _, digest = image.strip().partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = name[colon + 1:] if colon > slash else ""
    repo = name[:colon] if colon > slash else name
    domain, _, rest = repo.partition("/")
    has_domain = bool(rest) and ("." in domain or ":" in domain or domain == "localhost" or domain != domain.lower())
    path = rest if has_domain else repo
    if not path or path != path.lower():
        return "IfNotPresent"
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_field_ref(holder: Obj) -> None:
    ref = holder.get("fieldRef")
    if isinstance(ref, dict) and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def _default_http_get(handler: Any) -> None:
    http = as_dict(handler).get("httpGet")
    if isinstance(http, dict):
        if not http.get("path"):
            http["path"] = "/"
        if not http.get("scheme"):
            http["scheme"] = "HTTP"


def default_probe(probe: Obj) -> None:
    """``SetDefaults_Probe`` and its handler's defaults."""
    for name, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                        ("failureThreshold", 3)):
        if not probe.get(name):
            probe[name] = value
    _default_http_get(probe)


def default_container(container: Obj) -> None:
    """``SetDefaults_Container`` and nested defaults (ports, env, probes, lifecycle)."""
    if not container.get("imagePullPolicy"):
        container["imagePullPolicy"] = image_pull_policy(str(container.get("image") or ""))
    if not container.get("terminationMessagePath"):
        container["terminationMessagePath"] = "/dev/termination-log"
    if not container.get("terminationMessagePolicy"):
        container["terminationMessagePolicy"] = "File"
    if not isinstance(container.get("resources"), dict):
        container["resources"] = {}
    for port in dicts(container.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    for env in dicts(container.get("env")):
        if isinstance(env.get("valueFrom"), dict):
            _default_field_ref(env["valueFrom"])
    for name in PROBES:
        if isinstance(container.get(name), dict):
            default_probe(container[name])
    lifecycle = as_dict(container.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        _default_http_get(lifecycle.get(hook))


def default_volume(volume: Obj) -> None:
    """``SetDefaults_Volume`` (emptyDir when no source) and the volume sources' defaults."""
    if not any(v is not None for k, v in volume.items() if k != "name"):
        volume["emptyDir"] = {}
    for source in VOLUME_MODE_SOURCES:
        spec = volume.get(source)
        if isinstance(spec, dict) and spec.get("defaultMode") is None:
            spec["defaultMode"] = DEFAULT_MODE
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""
    for item in dicts(as_dict(volume.get("downwardAPI")).get("items")):
        _default_field_ref(item)
    for projection in dicts(as_dict(volume.get("projected")).get("sources")):
        token = projection.get("serviceAccountToken")
        if isinstance(token, dict) and not token.get("expirationSeconds"):
            token["expirationSeconds"] = 3600
        for item in dicts(as_dict(projection.get("downwardAPI")).get("items")):
            _default_field_ref(item)


def all_containers(spec: Obj) -> list[Obj]:
    """Regular, init and ephemeral containers of a pod spec."""
    return [*dicts(spec.get("containers")), *dicts(spec.get("initContainers")),
            *dicts(spec.get("ephemeralContainers"))]


def default_pod_spec(spec: Obj) -> None:
    """``SetDefaults_PodSpec`` and everything nested, in place."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    # v1 keeps the deprecated serviceAccount mirrored from serviceAccountName
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for container in all_containers(spec):
        default_container(container)
    for volume in dicts(spec.get("volumes")):
        default_volume(volume)


def default_pod_template(template: Obj) -> None:
    """Defaults of a ``PodTemplateSpec`` (deployments, replicasets): the spec's only."""
    default_pod_spec(child_dict(template, "spec"))


def default_host_network_ports(spec: Obj) -> None:
    """With ``hostNetwork``, a port's ``hostPort`` defaults to its ``containerPort``."""
    if not spec.get("hostNetwork"):
        return
    for container in [*dicts(spec.get("containers")), *dicts(spec.get("initContainers"))]:
        for port in dicts(container.get("ports")):
            if not port.get("hostPort") and port.get("containerPort"):
                port["hostPort"] = port["containerPort"]


# ---------------------------------------------------------------------------------------------
# validation


def validate_labels(labels: Any, path: str) -> list[Cause]:
    """``ValidateLabels``: qualified-name keys and label values."""
    errs: list[Cause] = []
    for k, v in as_dict(labels).items():
        errs.extend(fe.each_invalid(path, k, is_qualified_name(k)))
        errs.extend(fe.each_invalid(path, v, is_label_value(v if isinstance(v, str) else str(v))))
    return errs


def _enum(value: Any, path: str, allowed: Iterable[str], required_detail: str = "") -> list[Cause]:
    allowed = tuple(allowed)
    if value in allowed:
        return []
    if not value:
        return [fe.required(path, required_detail)]
    return [fe.not_supported(path, value, allowed)]


def _validate_ports(ports: Any, path: str, host_network: bool) -> list[Cause]:
    errs: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(dicts(ports)):
        p = fe.index(path, i)
        name = port.get("name")
        if name:
            msgs = is_valid_port_name(str(name))
            if msgs:
                errs.extend(fe.each_invalid(fe.child(p, "name"), name, msgs))
            elif name in names:
                errs.append(fe.duplicate(fe.child(p, "name"), name))
            else:
                names.add(name)
        container_port = port.get("containerPort")
        if not container_port:
            errs.append(fe.required(fe.child(p, "containerPort")))
        else:
            errs.extend(fe.each_invalid(fe.child(p, "containerPort"), container_port,
                                        is_valid_port_num(container_port)))
        host_port = port.get("hostPort")
        if host_port:
            errs.extend(fe.each_invalid(fe.child(p, "hostPort"), host_port, is_valid_port_num(host_port)))
            if host_network and host_port != container_port:
                errs.append(fe.invalid(fe.child(p, "hostPort"), host_port,
                                       "must match `containerPort` when `hostNetwork` is true"))
        errs.extend(_enum(port.get("protocol"), fe.child(p, "protocol"), PROTOCOLS))
    return errs


def _validate_env(env: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, var in enumerate(dicts(env)):
        p = fe.child(fe.index(path, i), "name")
        name = var.get("name")
        if not name:
            errs.append(fe.required(p))
        else:
            errs.extend(fe.each_invalid(p, name, is_relaxed_env_var_name(str(name))))
    return errs


def _validate_mounts(mounts: Any, path: str, volumes: set[str]) -> list[Cause]:
    errs: list[Cause] = []
    for i, mount in enumerate(dicts(mounts)):
        p = fe.index(path, i)
        name = mount.get("name")
        if not name:
            errs.append(fe.required(fe.child(p, "name")))
        elif name not in volumes:
            errs.append(fe.not_found(fe.child(p, "name"), name))
        if not mount.get("mountPath"):
            errs.append(fe.required(fe.child(p, "mountPath")))
    return errs


def _quantities(values: Any, path: str, errs: list[Cause]) -> dict[str, Any]:
    parsed = {}
    for name, raw in as_dict(values).items():
        p = fe.key(path, name)
        try:
            quantity = parse_quantity(raw)
        except ValueError:
            errs.append(fe.invalid(p, raw, QUANTITY_ERROR))
            continue
        if quantity < 0:
            errs.append(fe.invalid(p, str(raw), "must be greater than or equal to 0"))
        parsed[name] = (quantity, raw)
    return parsed


def validate_resources(resources: Any, path: str) -> list[Cause]:
    """Quantities parse, are not negative, and requests do not exceed limits."""
    errs: list[Cause] = []
    resources = as_dict(resources)
    limits = _quantities(resources.get("limits"), fe.child(path, "limits"), errs)
    requests = _quantities(resources.get("requests"), fe.child(path, "requests"), errs)
    for name, (quantity, raw) in requests.items():
        if name in limits and quantity > limits[name][0]:
            errs.append(fe.invalid(fe.child(path, "requests"), str(raw),
                                   f"must be less than or equal to {name} limit of {limits[name][1]}"))
    return errs


def _validate_container(container: Obj, path: str, volumes: set[str], host_network: bool) -> list[Cause]:
    errs: list[Cause] = []
    name = container.get("name")
    if not name:
        errs.append(fe.required(fe.child(path, "name")))
    else:
        errs.extend(fe.each_invalid(fe.child(path, "name"), name, is_dns1123_label(str(name))))
    if not container.get("image"):
        errs.append(fe.required(fe.child(path, "image")))
    errs.extend(_enum(container.get("imagePullPolicy"), fe.child(path, "imagePullPolicy"), PULL_POLICIES))
    errs.extend(_enum(container.get("terminationMessagePolicy"), fe.child(path, "terminationMessagePolicy"),
                      TERMINATION_MESSAGE_POLICIES, "must be 'File' or 'FallbackToLogsOnError'"))
    errs.extend(_validate_ports(container.get("ports"), fe.child(path, "ports"), host_network))
    errs.extend(_validate_env(container.get("env"), fe.child(path, "env")))
    errs.extend(_validate_mounts(container.get("volumeMounts"), fe.child(path, "volumeMounts"), volumes))
    errs.extend(validate_resources(container.get("resources"), fe.child(path, "resources")))
    return errs


def _validate_volumes(volumes: Any, path: str) -> tuple[list[Cause], set[str]]:
    errs: list[Cause] = []
    names: set[str] = set()
    for i, volume in enumerate(dicts(volumes)):
        p = fe.child(fe.index(path, i), "name")
        name = volume.get("name")
        if not name:
            errs.append(fe.required(p))
            continue
        msgs = is_dns1123_label(str(name))
        if msgs:
            errs.extend(fe.each_invalid(p, name, msgs))
        elif name in names:
            errs.append(fe.duplicate(p, name))
        names.add(name)
    return errs, names


def validate_taint_effect(effect: Any, path: str, allow_empty: bool) -> list[Cause]:
    """``validateTaintEffect``."""
    if not effect and allow_empty:
        return []
    return _enum(effect, path, TAINT_EFFECTS)


def validate_tolerations(tolerations: Any, path: str) -> list[Cause]:
    """``ValidateTolerations``."""
    errs: list[Cause] = []
    for i, tol in enumerate(dicts(tolerations)):
        p = fe.index(path, i)
        key, op, value = tol.get("key") or "", tol.get("operator") or "", tol.get("value") or ""
        if key:
            errs.extend(fe.each_invalid(fe.child(p, "key"), key, is_qualified_name(key)))
        if not key and op != "Exists":
            errs.append(fe.invalid(fe.child(p, "operator"), op, 'operator must be Exists when `key` is empty, which '
                                                                'means "match all values and all keys"'))
        if tol.get("tolerationSeconds") is not None and tol.get("effect") != "NoExecute":
            errs.append(fe.invalid(fe.child(p, "effect"), tol.get("effect") or "",
                                   "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if op in ("Equal", ""):
            msgs = is_label_value(value)
            if msgs:
                errs.append(fe.invalid(fe.child(p, "operator"), value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(fe.invalid(fe.child(p, "operator"), fe.GoRepr(str(tol)),
                                       "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(fe.not_supported(fe.child(p, "operator"), op, TOLERATION_OPERATORS))
        if tol.get("effect"):
            errs.extend(validate_taint_effect(tol["effect"], fe.child(p, "effect"), True))
    return errs


def validate_pod_spec(spec: Any, path: str = "spec") -> list[Cause]:
    """``ValidatePodSpec`` (the commonly hit rules), for pods and pod templates."""
    spec = as_dict(spec)
    errs, volumes = _validate_volumes(spec.get("volumes"), fe.child(path, "volumes"))
    host_network = bool(spec.get("hostNetwork"))
    containers = dicts(spec.get("containers"))
    names: set[Any] = set()
    if not containers:
        errs.append(fe.required(fe.child(path, "containers")))
    for field_name, group in (("containers", containers), ("initContainers", dicts(spec.get("initContainers")))):
        for i, container in enumerate(group):
            p = fe.index(fe.child(path, field_name), i)
            errs.extend(_validate_container(container, p, volumes, host_network))
            name = container.get("name")
            if name and name in names:
                errs.append(fe.duplicate(fe.child(p, "name"), name))
            names.add(name)
    errs.extend(_enum(spec.get("restartPolicy"), fe.child(path, "restartPolicy"), RESTART_POLICIES))
    errs.extend(_enum(spec.get("dnsPolicy"), fe.child(path, "dnsPolicy"), DNS_POLICIES))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not (isinstance(deadline, int) and 1 <= deadline <= MAX_INT32):
        errs.append(fe.invalid(fe.child(path, "activeDeadlineSeconds"), deadline,
                               f"must be between 1 and {MAX_INT32}, inclusive"))
    for name_field in ("nodeName", "serviceAccountName"):
        value = spec.get(name_field)
        if value:
            errs.extend(fe.each_invalid(fe.child(path, name_field), value, is_dns1123_subdomain(str(value))))
    errs.extend(validate_labels(spec.get("nodeSelector"), fe.child(path, "nodeSelector")))
    errs.extend(validate_tolerations(spec.get("tolerations"), fe.child(path, "tolerations")))
    return errs


def validate_pod_template(template: Any, path: str) -> list[Cause]:
    """``ValidatePodTemplateSpec``: template labels and the spec."""
    template = as_dict(template)
    errs = validate_labels(as_dict(template.get("metadata")).get("labels"), fe.child(fe.child(path, "metadata"),
                                                                                      "labels"))
    errs.extend(validate_pod_spec(template.get("spec"), fe.child(path, "spec")))
    return errs


def template_containers(obj: Obj) -> list[Obj]:
    """``spec.template.spec.containers`` of a workload, for its Table cells."""
    return dicts(as_dict(as_dict(as_dict(obj.get("spec")).get("template")).get("spec")).get("containers"))

