"""kubeconfig files: one cluster, one user, one context, credentials embedded.

``build_kubeconfig`` makes the dict (cluster with ``certificate-authority-data``; user with
``client-certificate-data``/``client-key-data`` or a ``token``), named as kubeadm names
``admin.conf``: cluster ``kubernetes``, context ``USER@kubernetes``. ``user_kubeconfig`` and
``component_kubeconfig`` also issue the client certificate from the cluster CA, with the identity
each component needs::

    admin                     CN=kubernetes-admin              O=system:masters
    kube-scheduler            CN=system:kube-scheduler
    kube-controller-manager   CN=system:kube-controller-manager
    kubelet                   CN=system:node:NODE              O=system:nodes

``write_kubeconfig`` writes one with mode 0600 (it holds a private key or a token).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from cryptography import x509

from kapi_certs import pki
from kapi_certs.files import PRIVATE, OutFile, write_files

Component = Literal["admin", "kube-scheduler", "kube-controller-manager", "kubelet"]
COMPONENTS: tuple[Component, ...] = get_args(Component)
CLUSTER_NAME = "kubernetes"

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def component_identity(component: Component, node_name: str = "") -> tuple[str, tuple[str, ...]]:
    """``(user name, groups)`` a control-plane component authenticates as.

    :raises ValueError: an unknown component, or ``kubelet`` without ``node_name``.
    """
    if component == "admin":
        return "kubernetes-admin", ("system:masters",)
    if component in ("kube-scheduler", "kube-controller-manager"):
        return f"system:{component}", ()
    if component == "kubelet":
        if not node_name:
            raise ValueError("a kubelet kubeconfig needs the node name (--node-name)")
        return f"system:node:{node_name}", ("system:nodes",)
    raise ValueError(f"unknown component {component!r}: choose from {', '.join(COMPONENTS)}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_kubeconfig(*, server: str, ca_cert: x509.Certificate | bytes, user: str,
                     client_cert: x509.Certificate | None = None, client_key: pki.PrivateKey | None = None,
                     token: str | None = None, cluster: str = CLUSTER_NAME, namespace: str = "") -> dict[str, Any]:
    """A kubeconfig dict with everything embedded.

    :param ca_cert: the CA that signed the server's certificate (object or PEM bytes).
    :param user: the user entry's name (also names the context ``user@cluster``).
    :param client_cert: with ``client_key``, the client certificate; or give ``token`` instead.
    :raises ValueError: neither (or both) a certificate pair and a token, or half a pair.
    """
    has_pair = client_cert is not None and client_key is not None
    if (client_cert is None) != (client_key is None) or has_pair == bool(token):
        raise ValueError("give either client_cert with client_key, or token")
    credentials: dict[str, str]
    if client_cert is not None and client_key is not None:
        credentials = {"client-certificate-data": _b64(pki.cert_pem(client_cert)),
                       "client-key-data": _b64(pki.key_pem(client_key))}
    else:
        credentials = {"token": str(token)}
    ca_pem = ca_cert if isinstance(ca_cert, bytes) else pki.cert_pem(ca_cert)
    context_name = f"{user}@{cluster}"
    context: dict[str, str] = {"cluster": cluster, "user": user}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"certificate-authority-data": _b64(ca_pem), "server": server}}],
        "contexts": [{"name": context_name, "context": context}],
        "current-context": context_name,
        "preferences": {},
        "users": [{"name": user, "user": credentials}],
    }


def user_kubeconfig(ca_cert: x509.Certificate, ca_key: pki.PrivateKey, *, server: str, name: str,
                    groups: Iterable[str] = (), days: int = 365, key_type: pki.KeyType = pki.DEFAULT_KEY_TYPE,
                    now: datetime.datetime | None = None) -> dict[str, Any]:
    """A kubeconfig for user ``name`` in ``groups``, with a new client certificate from the CA."""
    cert, key = pki.issue(ca_cert, ca_key, cn=name, orgs=groups, client=True, days=days, key_type=key_type, now=now)
    return build_kubeconfig(server=server, ca_cert=ca_cert, user=name, client_cert=cert, client_key=key)


def component_kubeconfig(ca_cert: x509.Certificate, ca_key: pki.PrivateKey, component: Component, *,
                         server: str, node_name: str = "", days: int = 365,
                         key_type: pki.KeyType = pki.DEFAULT_KEY_TYPE,
                         now: datetime.datetime | None = None) -> dict[str, Any]:
    """A kubeconfig for a control-plane component (see ``component_identity``)."""
    name, groups = component_identity(component, node_name)
    return user_kubeconfig(ca_cert, ca_key, server=server, name=name, groups=groups, days=days,
                           key_type=key_type, now=now)


def to_yaml(config: Mapping[str, Any]) -> str:
    """The kubeconfig as YAML text (key order kept)."""
    return yaml.dump(dict(config), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def write_kubeconfig(path: str | Path, config: Mapping[str, Any]) -> Path:
    """Write the kubeconfig to ``path`` atomically with mode 0600. :returns: the path."""
    target = Path(path)
    write_files(target.parent, [OutFile(target.name, to_yaml(config).encode(), PRIVATE)])
    return target


def load_kubeconfig(path: str | Path) -> dict[str, Any]:
    """Parse a kubeconfig file. :raises OSError, ValueError: unreadable or not a mapping."""
    data = yaml.load(Path(path).read_bytes(), Loader=_Loader)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a kubeconfig")
    return data


def current_credentials(config: Mapping[str, Any]) -> tuple[str, x509.Certificate | None, x509.Certificate | None]:
    """``(server, CA certificate, client certificate)`` of the current context; a missing part is
    ``""``/``None``. Used to check whether an existing kubeconfig is still good."""
    try:
        context = next(c["context"] for c in config.get("contexts", []) if c["name"] == config.get("current-context"))
        cluster = next(c["cluster"] for c in config.get("clusters", []) if c["name"] == context["cluster"])
        user = next(u["user"] for u in config.get("users", []) if u["name"] == context["user"])
    except (StopIteration, KeyError, TypeError):
        return "", None, None

    def cert(data: object) -> x509.Certificate | None:
        try:
            return pki.load_cert(base64.b64decode(str(data))) if data else None
        except ValueError:
            return None

    return str(cluster.get("server", "")), cert(cluster.get("certificate-authority-data")), \
        cert(user.get("client-certificate-data"))
