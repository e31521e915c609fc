"""The controller manager: kube-controller-manager's controllers, talking only to the API server.

Controllers (``--controllers`` names; one module each):

* ``deployment`` (``deployment``): ReplicaSets per pod template, rolling update / recreate,
  rollout conditions, revision history, scaling;
* ``replicaset`` (``replicaset``): pods for ReplicaSets, adoption, status;
* ``namespace`` (``namespace``): empties a terminating namespace, then finalizes it;
* ``garbagecollector`` (``garbagecollector``): ownerReferences with background, foreground and
  orphan propagation;
* ``nodelifecycle`` (``nodelifecycle``): unknown nodes, not-ready/unreachable taints, evictions;
* ``podgc`` (``podgc``): pods of deleted nodes;
* ``job`` (``job``): batch/v1 Jobs;
* ``serviceaccount`` (``serviceaccount``) and ``root-ca-cert-publisher`` (``rootcacert``): the
  ``default`` ServiceAccount and the ``kube-root-ca.crt`` ConfigMap of every namespace;
* ``endpoint`` (``endpoints``) and ``endpointslice`` (``endpointslice``) for selecting Services.

ClusterRole aggregation is done by the RBAC plugin (``kapi_plugins.authz_rbac``), not here.

The framework: ``workqueue`` (dedup, delays, rate-limited retries), ``informers`` (shared
list+watch caches with indexes), ``expectations``, ``claims`` (adopt/release), ``framework``
(``Controller``, ``ControllerContext``, ``ControllerOptions``). Running them: ``manager``
(``run_controllers``, in-process) and ``command`` (``kapi controller-manager``, registered by
``kapi_plugins.command_controller_manager``).

Embedding::

    stop = asyncio.Event()
    task = asyncio.create_task(run_controllers(client, controllers=["*"], stop=stop))
    ...
    stop.set(); await task
"""

from __future__ import annotations

from kapi.components.controllers.framework import Controller, ControllerContext, ControllerOptions
from kapi.components.controllers.manager import CONTROLLERS, run_controllers, select_controllers

__all__ = ["CONTROLLERS", "Controller", "ControllerContext", "ControllerOptions", "run_controllers",
           "select_controllers"]
