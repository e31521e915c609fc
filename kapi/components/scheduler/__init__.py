"""``kapi scheduler``: assigns pending pods to nodes, like kube-scheduler.

Modules, one job each: ``resources`` (request arithmetic, node infos), ``matching`` (selector
terms, taints and tolerations), ``podaffinity`` (inter-pod affinity on topology domains),
``filters`` and ``scoring`` (the plugins), ``algorithm`` (one decision), ``cache`` (the cluster
view), ``queue`` (pending pods), ``scheduler`` (the control loop), ``cli`` (the command).
"""
