"""Command line: ``kapi-apiserver`` (kube-apiserver's flags) and ``kapi`` (sub-commands).

``kapi-apiserver`` with no flags is a working server: it keeps an SQLite database and a
generated PKI under the data directory, and writes ``DATA_DIR/admin.kubeconfig`` for kubectl.
Plugins add sub-commands to ``kapi`` (``kapi certs ...``) and flags to the API server.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kapi.config import Config, default_data_dir
from kapi.flagtypes import boolean
from kapi.hooks import all_impls
from kapi.plugins import PluginConfigError, make_plugin_manager, plugin_names

log = logging.getLogger("kapi")

#: kube-apiserver's admission plugin order (``AllOrderedPlugins``), for the plugins kapi ships
ADMISSION_ORDER = ("NamespaceLifecycle", "LimitRanger", "ServiceAccount", "NodeRestriction", "TaintNodesByCondition",
                   "AlwaysPullImages", "PodSecurity", "Priority", "DefaultTolerationSeconds",
                   "MutatingAdmissionWebhook", "ValidatingAdmissionPolicy", "ValidatingAdmissionWebhook",
                   "ResourceQuota")
#: kube-apiserver's default-on admission plugins that kapi implements (NodeRestriction and
#: AlwaysPullImages are opt-in, as in kube). ``Config.admission`` stays empty for embedders:
#: pass ``admission=DEFAULT_ADMISSION_PLUGINS`` to get what ``kapi-apiserver`` runs.
DEFAULT_ADMISSION_PLUGINS = tuple(p for p in ADMISSION_ORDER if p not in ("NodeRestriction", "AlwaysPullImages"))

#: kube-apiserver's authenticator order; each is on when its flags are given (anonymous is last,
#: added by the app when --anonymous-auth allows it)
KUBE_AUTHENTICATION_ORDER = ("authn_request_header", "authn_x509", "authn_token_file", "authn_service_account",
                             "authn_bootstrap_token", "authn_oidc", "authn_webhook")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _duration(value: str) -> float:
    from kapi.timeouts import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_apiserver_flags(parser: argparse.ArgumentParser) -> None:
    """kube-apiserver's flags that kapi implements (same names and defaults where they exist)."""
    serving = parser.add_argument_group("secure serving")
    serving.add_argument("--bind-address", default="127.0.0.1", help="IP address to listen on (default 127.0.0.1)")
    serving.add_argument("--secure-port", type=int, default=6443, help="HTTPS port (default 6443)")
    serving.add_argument("--advertise-address", default="", help="address put in the serving certificate and the "
                         "kubeconfig when kapi generates them")
    serving.add_argument("--tls-cert-file", default="", help="serving certificate (PEM); generated under "
                         "DATA_DIR/pki when omitted")
    serving.add_argument("--tls-private-key-file", default="", help="serving key (PEM)")
    serving.add_argument("--workers", type=int, default=1, help="server processes, each with its own SO_REUSEPORT "
                         "socket and watch cache (needs a shared store: sqlite or etcd3)")
    authn = parser.add_argument_group("authentication")
    authn.add_argument("--client-ca-file", default="", help="CA bundle that verifies client certificates (x509 "
                       "authentication: CN = user, O = groups); default DATA_DIR/pki/ca.crt when kapi generates PKI")
    authn.add_argument("--token-auth-file", default="", help="static tokens, CSV: token,user,uid,\"group1,group2\"")
    authn.add_argument("--anonymous-auth", type=boolean, default=True, help="allow unauthenticated requests as "
                       "system:anonymous (turned off with --authorization-mode=AlwaysAllow, as kube-apiserver does)")
    authn.add_argument("--authentication-plugins", type=_csv, default=(), help="extra authenticator plugins "
                       "(entry-point names), tried after the built-in ones, in this order")
    authz = parser.add_argument_group("authorization")
    authz.add_argument("--authorization-mode", type=_csv, default=("AlwaysAllow",), help="ordered authorizers "
                       "(AlwaysAllow, AlwaysDeny, or any installed authorizer plugin); default AlwaysAllow")
    admission = parser.add_argument_group("admission")
    admission.add_argument("--enable-admission-plugins", type=_csv, default=(), help="admission plugins to run in "
                           "addition to the default-on ones (" + ",".join(DEFAULT_ADMISSION_PLUGINS) + "); kube's "
                           "plugins run in kube's order, others after them in the order given")
    admission.add_argument("--disable-admission-plugins", type=_csv, default=(), help="admission plugins not to run "
                           "(default-on ones included)")
    storage = parser.add_argument_group("storage")
    storage.add_argument("--storage-backend", default="", help="memory, sqlite (default) or etcd3 (default when "
                         "--etcd-servers is given)")
    storage.add_argument("--data-dir", default=default_data_dir(), help="SQLite database and generated "
                         "credentials (default %(default)s)")
    storage.add_argument("--etcd-servers", type=_csv, default=(), help="etcd endpoints, comma-separated")
    storage.add_argument("--etcd-prefix", default="/registry", help="key prefix in storage (default /registry)")
    storage.add_argument("--etcd-cafile", default="")
    storage.add_argument("--etcd-certfile", default="")
    storage.add_argument("--etcd-keyfile", default="")
    storage.add_argument("--watch-cache-size", type=int, default=1000, help="recent events kept in memory per "
                         "resource for watches (older resourceVersions are replayed from storage)")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-requests-inflight", type=int, default=400)
    limits.add_argument("--max-mutating-requests-inflight", type=int, default=200)
    limits.add_argument("--min-request-timeout", type=int, default=1800, help="minimum watch duration, seconds")
    limits.add_argument("--request-timeout", type=_duration, default=60.0, help="longest time a request that is not "
                        "long-running may take (504 after; default 1m0s)")
    services = parser.add_argument_group("services")
    services.add_argument("--service-cluster-ip-range", default="10.96.0.0/12")
    services.add_argument("--service-node-port-range", default="30000-32767")
    misc = parser.add_argument_group("plugins and logging")
    misc.add_argument("--plugin-option", action="append", default=[], metavar="PLUGIN.KEY=VALUE",
                      help="a setting for a plugin's config section (repeatable)")
    misc.add_argument("-v", "--v", dest="verbosity", type=int, default=0, help="log verbosity (0-10)")
    misc.add_argument("--logging-format", "--log-format", dest="logging_format", choices=("text", "json"),
                      default="text", help="log line format; json lines carry the request ID (the Audit-Id header)")


def admission_plugins(enable: Sequence[str], disable: Sequence[str]) -> tuple[str, ...]:
    """kube-apiserver's rule: the default-on plugins plus ``enable``, minus ``disable``; kube's plugins
    in kube's order (``ADMISSION_ORDER``), then any other (third-party) plugin in the order given."""
    wanted = [p for p in (*DEFAULT_ADMISSION_PLUGINS, *enable) if p not in set(disable)]
    known = [p for p in ADMISSION_ORDER if p in wanted]
    return tuple(known + [p for p in dict.fromkeys(wanted) if p not in ADMISSION_ORDER])


def _plugin_options(values: Sequence[str]) -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {}
    for item in values:
        target, sep, value = item.partition("=")
        plugin, dot, key = target.partition(".")
        if not sep or not dot or not plugin or not key:
            raise PluginConfigError(f"--plugin-option {item!r}: expected PLUGIN.KEY=VALUE")
        options.setdefault(plugin, {})[key] = value
    return options


def config_from_args(args: argparse.Namespace, extra_options: dict[str, dict[str, Any]] | None = None) -> Config:
    """Flags -> Config. Built-in authenticators are enabled by the flags that configure them (a
    plugin's options section says ``enabled``), in kube-apiserver's order; ``--authentication-plugins``
    come after them."""
    options = _plugin_options(args.plugin_option)
    for plugin, section in (extra_options or {}).items():
        options.setdefault(plugin, {}).update(section)
    flag_enabled = {"authn_x509": bool(args.client_ca_file), "authn_token_file": bool(args.token_auth_file)}
    authenticators = [name for name in KUBE_AUTHENTICATION_ORDER
                      if flag_enabled.get(name) or options.get(name, {}).get("enabled")]
    authenticators += [p for p in args.authentication_plugins if p not in authenticators]
    modes = tuple(args.authorization_mode)
    anonymous = bool(args.anonymous_auth) and "AlwaysAllow" not in modes
    if args.anonymous_auth and "AlwaysAllow" in modes:
        log.warning("AnonymousAuth is not allowed with the AlwaysAllow authorizer: anonymous authentication is off")
    backend = args.storage_backend or ("etcd3" if args.etcd_servers else "sqlite")
    admission = admission_plugins(args.enable_admission_plugins, args.disable_admission_plugins)
    return Config(bind_address=args.bind_address, secure_port=args.secure_port,
                  advertise_address=args.advertise_address, tls_cert_file=args.tls_cert_file,
                  tls_private_key_file=args.tls_private_key_file, client_ca_file=args.client_ca_file,
                  workers=args.workers, authenticators=tuple(authenticators), token_auth_file=args.token_auth_file,
                  anonymous_auth=anonymous, authorizers=modes, admission=admission, storage_backend=backend,
                  data_dir=args.data_dir, etcd_servers=tuple(args.etcd_servers), etcd_prefix=args.etcd_prefix,
                  etcd_cafile=args.etcd_cafile, etcd_certfile=args.etcd_certfile, etcd_keyfile=args.etcd_keyfile,
                  watch_cache_size=args.watch_cache_size, max_requests_inflight=args.max_requests_inflight,
                  max_mutating_requests_inflight=args.max_mutating_requests_inflight,
                  min_request_timeout=args.min_request_timeout, request_timeout=args.request_timeout,
                  service_cluster_ip_range=args.service_cluster_ip_range,
                  service_node_port_range=args.service_node_port_range, plugin_options=options)


def _server_url(config: Config) -> str:
    host = config.advertise_address or config.bind_address
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"https://{f'[{host}]' if ':' in host else host}:{config.secure_port}"


def run_apiserver(args: argparse.Namespace, pm_options: dict[str, dict[str, Any]]) -> int:
    """Start the API server from parsed flags (generating PKI and admin kubeconfig if needed)."""
    from kapi.server import TLSFiles, run

    started = time.monotonic()
    from kapi.observability.logs import configure_logging

    configure_logging(args.logging_format, logging.DEBUG if args.verbosity >= 4 else logging.INFO)
    if bool(args.tls_cert_file) != bool(args.tls_private_key_file):
        print("error: --tls-cert-file and --tls-private-key-file go together", file=sys.stderr)
        return 2
    kubeconfig = None
    if not args.tls_cert_file:
        from kapi_certs import ensure_default_credentials

        Path(args.data_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = Config(bind_address=args.bind_address, secure_port=args.secure_port,
                       advertise_address=args.advertise_address)
        creds = ensure_default_credentials(args.data_dir, server=_server_url(probe),
                                           advertise_address=args.advertise_address)
        args.tls_cert_file, args.tls_private_key_file = str(creds.serving_cert), str(creds.serving_key)
        if not args.client_ca_file:
            args.client_ca_file = str(creds.ca_cert)
        kubeconfig = creds.admin_kubeconfig_path
    try:
        config = config_from_args(args, pm_options)
    except PluginConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tls = TLSFiles(args.tls_cert_file, args.tls_private_key_file, args.client_ca_file)

    def ready() -> None:
        took = time.monotonic() - started
        log.info("kapi-apiserver serving on %s (storage %s, ready in %.2fs)", _server_url(config),
                 config.storage_backend, took)
        if kubeconfig is not None:
            print(f"admin kubeconfig: {kubeconfig}\n  kubectl --kubeconfig {kubeconfig} get namespaces", flush=True)

    try:
        run(config, tls, on_ready=ready)
    except PluginConfigError as exc:  # a misconfigured or missing plugin: a usage error, like a bad flag
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _plugin_flags(parser: argparse.ArgumentParser) -> Any:
    pm = make_plugin_manager()
    pm.hook.kapi_add_options(parser=parser)
    return pm


def _plugin_sections(pm: Any, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {}
    for impl in pm.hook.kapi_read_options.get_hookimpls():
        section = impl.function(*[{"args": args}[a] for a in impl.argnames])
        if section:
            sections[impl.plugin_name] = dict(section)
    return sections


def with_generated_paths(args: argparse.Namespace) -> argparse.Namespace:
    """A copy of the parsed flags with what the server fills in itself: the generated PKI's paths
    (``--tls-cert-file``, ``--tls-private-key-file``, ``--client-ca-file`` under DATA_DIR/pki) and
    the storage backend."""
    out = argparse.Namespace(**vars(args))
    pki = Path(args.data_dir) / "pki"
    if not args.tls_cert_file:
        out.tls_cert_file, out.tls_private_key_file = str(pki / "apiserver.crt"), str(pki / "apiserver.key")
        out.client_ca_file = args.client_ca_file or str(pki / "ca.crt")
    out.storage_backend = args.storage_backend or ("etcd3" if args.etcd_servers else "sqlite")
    return out


def effective_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """Every option of ``parser`` with its value in ``args``, as ``--flag=value`` in parser order
    (defaults included; lists comma-joined; repeatable flags repeated; on/off flags bare)."""
    out: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "print_effective_options") \
                or action.default == argparse.SUPPRESS:
            continue
        flag = max((o for o in action.option_strings if not o.startswith("--no-")), key=len,
                   default=action.option_strings[0])
        value = getattr(args, action.dest, None)
        if isinstance(action, argparse.BooleanOptionalAction):
            out.append(flag if value else f"--no-{flag[2:]}")
        elif action.nargs == 0:
            if bool(value) != bool(action.default):
                out.append(flag)
        elif isinstance(action, argparse._AppendAction):
            out.extend(f"{flag}={item}" for item in value or [])
        elif isinstance(value, bool):
            out.append(f"{flag}={'true' if value else 'false'}")
        elif isinstance(value, (list, tuple)):
            out.append(f"{flag}={','.join(str(v) for v in value)}")
        elif value is not None:
            out.append(f"{flag}={value}")
    return out


def apiserver_main(argv: Sequence[str] | None = None) -> int:
    """``kapi-apiserver``."""
    parser = argparse.ArgumentParser(prog="kapi-apiserver", description="A Kubernetes-compatible API server. "
                                     "With no flags: SQLite storage and a generated PKI under --data-dir, admin "
                                     "kubeconfig at DATA_DIR/admin.kubeconfig.")
    add_apiserver_flags(parser)
    parser.add_argument("--print-effective-options", action="store_true", help="print every option this server "
                        "would run with (defaults and generated-PKI paths included), one per line, and exit")
    try:
        pm = _plugin_flags(parser)
        args = parser.parse_args(argv)
        sections = _plugin_sections(pm, args)
    except (PluginConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_effective_options:
        print("\n".join(effective_flags(parser, with_generated_paths(args))))
        return 0
    return run_apiserver(args, sections)


def _cmd_plugins(_args: argparse.Namespace) -> int:
    from importlib.metadata import entry_points

    pm = make_plugin_manager()
    origins = {ep.name: f"{ep.value} ({ep.dist.name if ep.dist else '?'})" for ep in entry_points(group="kapi")}
    for name, plugin in sorted(plugin_names(pm).items()):
        hooks = sorted(impl.name for impl in pm.get_hookcallers(plugin) or [])
        aliases = ", ".join(getattr(plugin, "ALIASES", ()))
        print(f"{name}{f' ({aliases})' if aliases else ''}\n  from: {origins.get(name, 'registered in code')}\n"
              f"  hooks: {', '.join(hooks)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``kapi``: ``serve`` (the API server), ``plugins``, and the commands plugins add."""
    parser = argparse.ArgumentParser(prog="kapi", description="kapi: a Kubernetes-compatible control plane")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = subparsers.add_parser("serve", help="run the API server (same flags as kapi-apiserver)")
    add_apiserver_flags(serve)
    serve.set_defaults(func=None)
    plugins = subparsers.add_parser("plugins", help="list installed plugins, their aliases and hooks")
    plugins.set_defaults(func=_cmd_plugins)
    pm = make_plugin_manager()
    pm.hook.kapi_add_options(parser=serve)
    for impl in all_impls(pm, "kapi_register_commands"):
        try:
            impl.call({"subparsers": subparsers})
        except Exception as exc:  # one broken plugin must not take the whole CLI down
            print(f"warning: plugin {impl.plugin!r} could not add its commands ({type(exc).__name__}: {exc}); "
                  f"reinstall or remove the package that provides it", file=sys.stderr)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "serve":
        return run_apiserver(args, _plugin_sections(pm, args))
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
