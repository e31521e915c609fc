"""The Pod Security Standards (``latest``) as pure checks of a pod's metadata and spec.

``evaluate(level, metadata, spec)`` returns the failed checks of ``baseline`` or ``restricted``
(``privileged`` allows everything) as ``(reason, detail)`` pairs ordered by check ID, worded as
k8s.io/pod-security-admission words them, e.g. ``("privileged", 'container "app" must not set
securityContext.privileged=true')``. ``message(level, failures)`` renders them as
``violates PodSecurity "restricted:latest": reason (detail), ...``.

Baseline: host namespaces, privileged containers, capabilities beyond the default set, hostPath
volumes, host ports, AppArmor, SELinux options, /proc mount, seccomp ``Unconfined``, unsafe
sysctls, Windows host processes, probe/lifecycle hosts. Restricted adds: volume types,
``allowPrivilegeEscalation: false``, ``runAsNonRoot: true``, no ``runAsUser: 0``, a seccomp
profile, and capabilities dropped to ``ALL`` (adding only ``NET_BIND_SERVICE``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
SAFE_SYSCTLS = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                          "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
                          "net.ipv4.ip_local_reserved_ports",
                          "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                          "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
RESTRICTED_VOLUME_SOURCES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                       "persistentVolumeClaim", "projected", "secret", "image"})
APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"

Obj = Mapping[str, Any]
Failure = tuple[str, str]


def _q(names: Iterable[Any]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _containers(spec: Obj) -> list[Obj]:
    return [c for field in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(field) or [] if isinstance(c, Mapping)]


def _sc(holder: Obj) -> Obj:
    value = holder.get("securityContext")
    return value if isinstance(value, Mapping) else {}


def _who(names: list[str], singular: str = "container", plural: str = "containers") -> str:
    return f"{singular if len(names) == 1 else plural} {_q(names)}"


def _where(pod_bad: bool, names: list[str]) -> str:
    """``pod``, ``container "a"``, ``pod and containers "a", "b"``."""
    parts = (["pod"] if pod_bad else []) + ([_who(names)] if names else [])
    return " and ".join(parts)


# ---------------------------------------------------------------------------------------------
# baseline checks (each returns the detail, or "" when the pod passes)


def _app_armor(meta: Obj, spec: Obj) -> str:
    bad = [f'{k}="{v}"' for k, v in sorted((meta.get("annotations") or {}).items())
           if k.startswith(APPARMOR_PREFIX) and v != "runtime/default" and not str(v).startswith("localhost/")]
    details = [f"annotation {item}" if len(bad) == 1 else item for item in bad]
    if len(bad) > 1:
        details = [f"annotations {', '.join(bad)}"]
    pod_bad = ((_sc(spec).get("appArmorProfile") or {}).get("type") == "Unconfined")
    names = [c.get("name", "") for c in _containers(spec) if (_sc(c).get("appArmorProfile") or {}).get("type")
             == "Unconfined"]
    if pod_bad or names:
        details.append(f'{_where(pod_bad, names)} must not set securityContext.appArmorProfile.type to "Unconfined"')
    return "; ".join(details)


def _capabilities_baseline(_meta: Obj, spec: Obj) -> str:
    names, caps = [], set()
    for c in _containers(spec):
        added = [a for a in (_sc(c).get("capabilities") or {}).get("add") or [] if a not in BASELINE_CAPABILITIES]
        if added:
            names.append(c.get("name", ""))
            caps.update(added)
    return f"{_who(names)} must not include {_q(sorted(caps))} in securityContext.capabilities.add" if names else ""


def _host_namespaces(_meta: Obj, spec: Obj) -> str:
    return ", ".join(f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k))


def _host_path_volumes(_meta: Obj, spec: Obj) -> str:
    names = [v.get("name", "") for v in spec.get("volumes") or [] if isinstance(v, Mapping) and "hostPath" in v]
    return _who(names, "volume", "volumes") if names else ""


def _host_ports(_meta: Obj, spec: Obj) -> str:
    names: list[str] = []
    ports: list[str] = []
    for c in _containers(spec):
        found = [p["hostPort"] for p in c.get("ports") or [] if isinstance(p, Mapping) and p.get("hostPort")]
        if found:
            names.append(c.get("name", ""))
            ports.extend(str(p) for p in found)
    if not names:
        return ""
    verb = "uses" if len(names) == 1 else "use"
    noun = "hostPort" if len(ports) == 1 else "hostPorts"
    return f"{_who(names)} {verb} {noun} {', '.join(ports)}"


def _handlers(container: Obj) -> Iterable[Obj]:
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        yield container.get(probe) or {}
    for hook in ("postStart", "preStop"):
        yield (container.get("lifecycle") or {}).get(hook) or {}


def _probe_hosts(_meta: Obj, spec: Obj) -> str:
    names, hosts = [], []
    for c in _containers(spec):
        found = [h for handler in _handlers(c) if isinstance(handler, Mapping)
                 for action in ("httpGet", "tcpSocket") if isinstance(handler.get(action), Mapping)
                 for h in [handler[action].get("host")] if h and h not in ("127.0.0.1", "::1")]
        if found:
            names.append(c.get("name", ""))
            hosts.extend(found)
    if not names:
        return ""
    return f"{_who(names)} {'uses' if len(names) == 1 else 'use'} probe or lifecycle host {_q(hosts)}"


def _privileged(_meta: Obj, spec: Obj) -> str:
    names = [c.get("name", "") for c in _containers(spec) if _sc(c).get("privileged")]
    return f"{_who(names)} must not set securityContext.privileged=true" if names else ""


def _proc_mount(_meta: Obj, spec: Obj) -> str:
    bad = [(c.get("name", ""), _sc(c).get("procMount")) for c in _containers(spec)
           if _sc(c).get("procMount") not in (None, "", "Default")]
    if not bad:
        return ""
    return f"{_who([n for n, _ in bad])} must not set securityContext.procMount to {_q(sorted({v for _, v in bad}))}"


def _se_linux(_meta: Obj, spec: Obj) -> str:
    def problems(holder: Obj) -> list[str]:
        opts = _sc(holder).get("seLinuxOptions") or {}
        found = [f'type "{opts["type"]}"'] if opts.get("type", "") not in SELINUX_TYPES else []
        found += [f'{k} "{opts[k]}"' for k in ("user", "role") if opts.get(k)]
        return found

    pod_found = problems(spec)
    names, found = [], list(pod_found)
    for c in _containers(spec):
        mine = problems(c)
        if mine:
            names.append(c.get("name", ""))
            found.extend(x for x in mine if x not in found)
    if not found:
        return ""
    return f"{_where(bool(pod_found), names)} set forbidden securityContext.seLinuxOptions: {'; '.join(found)}"


def _seccomp_type(holder: Obj) -> str | None:
    profile = _sc(holder).get("seccompProfile")
    return profile.get("type") if isinstance(profile, Mapping) else None


def _seccomp_baseline(_meta: Obj, spec: Obj) -> str:
    pod_bad = _seccomp_type(spec) == "Unconfined"
    names = [c.get("name", "") for c in _containers(spec) if _seccomp_type(c) == "Unconfined"]
    if not pod_bad and not names:
        return ""
    return f'{_where(pod_bad, names)} must not set securityContext.seccompProfile.type to "Unconfined"'


def _sysctls(_meta: Obj, spec: Obj) -> str:
    bad = [s.get("name", "") for s in _sc(spec).get("sysctls") or [] if isinstance(s, Mapping)
           and s.get("name") not in SAFE_SYSCTLS]
    return ", ".join(bad)


def _host_process(_meta: Obj, spec: Obj) -> str:
    pod_bad = bool((_sc(spec).get("windowsOptions") or {}).get("hostProcess"))
    names = [c.get("name", "") for c in _containers(spec) if (_sc(c).get("windowsOptions") or {}).get("hostProcess")]
    if not pod_bad and not names:
        return ""
    return f"{_where(pod_bad, names)} must not set securityContext.windowsOptions.hostProcess=true"


# ---------------------------------------------------------------------------------------------
# restricted checks


def _allow_privilege_escalation(_meta: Obj, spec: Obj) -> str:
    names = [c.get("name", "") for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    return f"{_who(names)} must set securityContext.allowPrivilegeEscalation=false" if names else ""


def _capabilities_restricted(_meta: Obj, spec: Obj) -> str:
    no_drop, adding, caps = [], [], set()
    for c in _containers(spec):
        capabilities = _sc(c).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            no_drop.append(c.get("name", ""))
        added = [a for a in capabilities.get("add") or [] if a != "NET_BIND_SERVICE"]
        if added:
            adding.append(c.get("name", ""))
            caps.update(added)
    details = []
    if no_drop:
        details.append(f'{_who(no_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_who(adding)} must not include {_q(sorted(caps))} in securityContext.capabilities.add")
    return "; ".join(details)


def _restricted_volumes(_meta: Obj, spec: Obj) -> str:
    names: list[str] = []
    kinds: list[str] = []
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, Mapping):
            continue
        bad = [k for k in volume if k != "name" and k not in RESTRICTED_VOLUME_SOURCES]
        if bad:
            names.append(volume.get("name", ""))
            kinds.extend(b for b in bad if b not in kinds)
    if not names:
        return ""
    verb = "uses" if len(names) == 1 else "use"
    noun = "restricted volume type" if len(kinds) == 1 else "restricted volume types"
    return f"{_who(names, 'volume', 'volumes')} {verb} {noun} {_q(sorted(kinds))}"


def _run_as_non_root(_meta: Obj, spec: Obj) -> str:
    pod_value = _sc(spec).get("runAsNonRoot")
    details = ["pod must not set securityContext.runAsNonRoot=false"] if pod_value is False else []
    explicit_false = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsNonRoot") is False]
    if explicit_false:
        details.append(f"{_who(explicit_false)} must not set securityContext.runAsNonRoot=false")
    if pod_value is not True:
        unset = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsNonRoot") is None]
        if unset:
            details.append(f"pod or {_who(unset)} must set securityContext.runAsNonRoot=true")
    return "; ".join(details)


def _run_as_user(_meta: Obj, spec: Obj) -> str:
    pod_bad = _sc(spec).get("runAsUser") == 0
    names = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
    return f"{_where(pod_bad, names)} must not set runAsUser=0" if pod_bad or names else ""


def _seccomp_restricted(_meta: Obj, spec: Obj) -> str:
    allowed = ("RuntimeDefault", "Localhost")
    pod_type = _seccomp_type(spec)
    details = []
    if pod_type is not None and pod_type not in allowed:
        details.append(f'pod must not set securityContext.seccompProfile.type to "{pod_type}"')
    bad = [(c.get("name", ""), _seccomp_type(c)) for c in _containers(spec)
           if _seccomp_type(c) is not None and _seccomp_type(c) not in allowed]
    if bad:
        details.append(f"{_who([n for n, _ in bad])} must not set securityContext.seccompProfile.type to "
                       f"{_q(sorted({str(t) for _, t in bad}))}")
    if pod_type not in allowed:
        unset = [c.get("name", "") for c in _containers(spec) if _seccomp_type(c) is None]
        if unset:
            details.append(f'pod or {_who(unset)} must set securityContext.seccompProfile.type to "RuntimeDefault" '
                           f'or "Localhost"')
    return "; ".join(details)


Check = Callable[[Obj, Obj], str]

#: check ID -> (minimum level, reason, check, IDs it replaces at that level)
CHECKS: dict[str, tuple[str, str, Check, tuple[str, ...]]] = {
    "allowPrivilegeEscalation": ("restricted", "allowPrivilegeEscalation != false", _allow_privilege_escalation,
                                 ()),
    "appArmorProfile": ("baseline", "forbidden AppArmor profiles", _app_armor, ()),
    "capabilities_baseline": ("baseline", "non-default capabilities", _capabilities_baseline, ()),
    "capabilities_restricted": ("restricted", "unrestricted capabilities", _capabilities_restricted, ()),
    "hostNamespaces": ("baseline", "host namespaces", _host_namespaces, ()),
    "hostPathVolumes": ("baseline", "hostPath volumes", _host_path_volumes, ()),
    "hostPorts": ("baseline", "hostPort", _host_ports, ()),
    "hostProbesAndHostLifecycle": ("baseline", "probe or lifecycle host", _probe_hosts, ()),
    "privileged": ("baseline", "privileged", _privileged, ()),
    "procMount": ("baseline", "procMount", _proc_mount, ()),
    "restrictedVolumes": ("restricted", "restricted volume types", _restricted_volumes, ("hostPathVolumes",)),
    "runAsNonRoot": ("restricted", "runAsNonRoot != true", _run_as_non_root, ()),
    "runAsUser": ("restricted", "runAsUser=0", _run_as_user, ()),
    "seLinuxOptions": ("baseline", "seLinuxOptions", _se_linux, ()),
    "seccompProfile_baseline": ("baseline", "seccompProfile", _seccomp_baseline, ()),
    "seccompProfile_restricted": ("restricted", "seccompProfile", _seccomp_restricted, ("seccompProfile_baseline",)),
    "sysctls": ("baseline", "forbidden sysctls", _sysctls, ()),
    "windowsHostProcess": ("baseline", "hostProcess", _host_process, ()),
}


def _checks_for(level: str) -> tuple[tuple[str, Check], ...]:
    rank = LEVELS.index(level)
    active = {cid: spec for cid, spec in CHECKS.items() if LEVELS.index(spec[0]) <= rank}
    replaced = {r for spec in active.values() for r in spec[3]}
    return tuple((spec[1], spec[2]) for cid, spec in sorted(active.items()) if cid not in replaced)


_BY_LEVEL = {level: _checks_for(level) for level in LEVELS}


def evaluate(level: str, metadata: Obj, spec: Obj) -> list[Failure]:
    """Failed checks of ``level`` for a pod (or pod template) ``metadata`` and ``spec``."""
    failures = []
    for reason, check in _BY_LEVEL[level]:
        detail = check(metadata, spec)
        if detail:
            failures.append((reason, detail))
    return failures


def message(level: str, version: str, failures: list[Failure], verb: str = "violates") -> str:
    """``violates PodSecurity "LEVEL:VERSION": reason (detail), ...`` (``verb`` e.g. ``would violate``)."""
    parts = ", ".join(f"{reason} ({detail})" if detail else reason for reason, detail in failures)
    return f'{verb} PodSecurity "{level}:{version}": {parts}'
