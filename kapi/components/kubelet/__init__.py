"""``kapi kubelet``: the node agent.

Modules, one job each: ``runtime`` (the runtime plugin contract and lookup), ``podstatus``
(status from container records, pure), ``env`` (environment and command line), ``worker`` (one
pod's life), ``node`` (Node registration, Lease, node status), ``kubelet`` (one node's pods),
``fleet`` (the kubelets of a process and their pod informer), ``logs`` and ``server`` (the HTTPS
endpoint), ``tls`` (its certificate), ``cli`` (the command).
"""
