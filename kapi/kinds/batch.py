"""Jobs and CronJobs (batch/v1): defaults, the generated selector, validation, printers.

A Job without ``spec.manualSelector: true`` gets kube-apiserver's generated selector on create:
``batch.kubernetes.io/controller-uid=UID`` in ``spec.selector.matchLabels``, and the template is
labelled with ``batch.kubernetes.io/controller-uid``, ``batch.kubernetes.io/job-name`` and their
legacy forms ``controller-uid``/``job-name``. Defaults follow ``SetDefaults_Job`` (completions and
parallelism 1 when both are unset, backoffLimit 6, completionMode NonIndexed, suspend false,
podReplacementPolicy TerminatingOrFailed) and ``SetDefaults_CronJob``. Selector, template and
completions are immutable. The Job controller lives in ``kapi.components.controllers.job``.
"""

from __future__ import annotations

from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds import podspec
from kapi.kinds.access import as_dict, as_list, child_dict, dicts
from kapi.kinds.apps import go_label_selector, selector_string, validate_label_selector
from kapi.kinds.printing import AGE, CONTAINERS, IMAGES, NONE, age, container_cells, human_duration, parse_time, utcnow
from kapi.resources import ALL_VERBS, Column, ResourceType, Strategy
from kapi.selectors import from_label_selector_dict

Obj = dict[str, Any]

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
COMPLETION_MODES = ("NonIndexed", "Indexed")
JOB_RESTART_POLICIES = ("OnFailure", "Never")
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})


def _condition_true(obj: Obj, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in dicts(as_dict(obj.get("status")).get("conditions")))


# ---------------------------------------------------------------------------------------------
# jobs


def generate_selector(job: Obj) -> None:
    """``generateSelectorIfNeeded``: the controller-uid selector and template labels (create only)."""
    spec = child_dict(job, "spec")
    if spec.get("manualSelector") is True:
        return
    meta = as_dict(job.get("metadata"))
    uid, name = str(meta.get("uid") or ""), str(meta.get("name") or "")
    labels = child_dict(child_dict(child_dict(spec, "template"), "metadata"), "labels")
    labels.update({LEGACY_CONTROLLER_UID_LABEL: uid, CONTROLLER_UID_LABEL: uid,
                   LEGACY_JOB_NAME_LABEL: name, JOB_NAME_LABEL: name})
    if spec.get("selector") is None:
        spec["selector"] = {"matchLabels": {CONTROLLER_UID_LABEL: uid}}


def default_job_spec(spec: Obj) -> None:
    """``SetDefaults_Job`` on a JobSpec (also used for CronJob job templates)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    if not spec.get("completionMode"):
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if not spec.get("podReplacementPolicy"):
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    for rule in dicts(as_dict(spec.get("podFailurePolicy")).get("rules")):
        for pattern in dicts(rule.get("onPodConditions")):
            pattern.setdefault("status", "True")
    podspec.default_pod_template(child_dict(spec, "template"))


def _validate_job_spec(spec: Obj, path: str, *, selector_required: bool) -> list[Cause]:
    errs: list[Cause] = []
    for name in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        errs.extend(fe.nonnegative(fe.child(path, name), spec.get(name)))
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline <= 0:
        errs.append(fe.invalid(fe.child(path, "activeDeadlineSeconds"), deadline, "must be greater than 0"))
    mode = spec.get("completionMode")
    if mode and mode not in COMPLETION_MODES:
        errs.append(fe.not_supported(fe.child(path, "completionMode"), mode, COMPLETION_MODES))
    if mode == "Indexed" and spec.get("completions") is None:
        errs.append(fe.required(fe.child(path, "completions"), "when completion mode is Indexed"))
    selector = spec.get("selector")
    label_selector = None
    if isinstance(selector, dict):
        errs.extend(validate_label_selector(selector, fe.child(path, "selector")))
        try:
            label_selector = from_label_selector_dict(selector)
        except ValueError:
            errs.append(fe.invalid(fe.child(path, "selector"), go_label_selector(selector), "invalid label selector"))
    elif selector_required:
        errs.append(fe.required(fe.child(path, "selector")))
    template = spec.get("template")
    if not isinstance(template, dict):
        return [*errs, fe.required(fe.child(path, "template"))]
    labels = as_dict(as_dict(template.get("metadata")).get("labels"))
    if label_selector is not None:
        if label_selector.empty:
            errs.append(fe.invalid(fe.child(path, "selector"), go_label_selector(selector),
                                   "empty selector is invalid for job"))
        elif not label_selector.matches(labels):
            errs.append(fe.invalid(f"{path}.template.metadata.labels", labels,
                                   "`selector` does not match template `labels`"))
    errs.extend(podspec.validate_pod_template(template, fe.child(path, "template")))
    restart = as_dict(template.get("spec")).get("restartPolicy")
    if restart not in JOB_RESTART_POLICIES:
        errs.append(fe.not_supported(f"{path}.template.spec.restartPolicy", restart or "", JOB_RESTART_POLICIES))
    return errs


class JobStrategy(Strategy):
    """Jobs (``jobStrategy``)."""

    has_status = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {}
        generate_selector(obj)

    def default(self, obj: Obj) -> None:
        spec = child_dict(obj, "spec")
        default_job_spec(spec)
        meta = child_dict(obj, "metadata")
        template_labels = as_dict(as_dict(as_dict(spec.get("template")).get("metadata")).get("labels"))
        if not meta.get("labels") and template_labels:
            meta["labels"] = dict(template_labels)

    def validate(self, obj: Obj) -> list[Cause]:
        return _validate_job_spec(as_dict(obj.get("spec")), "spec", selector_required=True)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        errs = self.validate(obj)
        spec, old_spec = as_dict(obj.get("spec")), as_dict(old.get("spec"))
        for name in ("selector", "completions", "completionMode"):
            if spec.get(name) != old_spec.get(name):
                errs.append(fe.immutable(f"spec.{name}", spec.get(name)))
        if spec.get("template") != old_spec.get("template"):
            errs.append(fe.immutable("spec.template", fe.GoRepr("core.PodTemplateSpec{...}")))
        return errs

    def field_values(self, obj: Obj) -> dict[str, str]:
        return {"status.successful": str(as_dict(obj.get("status")).get("succeeded") or 0)}

    def columns(self) -> list[Column]:
        return list(JOB_COLUMNS)

    def cells(self, obj: Obj) -> list[Any]:
        spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
        names, images = container_cells(podspec.template_containers(obj))
        selector = selector_string(spec.get("selector"))
        return [job_status(obj), _completions(spec, status), _duration(status), age(obj), names, images,
                "<error>" if selector is None else (selector or NONE)]


def job_status(job: Obj) -> str:
    """The STATUS cell of ``kubectl get jobs`` (``printJob``)."""
    for kind, text in (("Complete", "Complete"), ("Failed", "Failed")):
        if _condition_true(job, kind):
            return text
    if as_dict(job.get("metadata")).get("deletionTimestamp"):
        return "Terminating"
    for kind in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _condition_true(job, kind):
            return kind
    return "Running"


def _completions(spec: Obj, status: Obj) -> str:
    succeeded = status.get("succeeded") or 0
    if spec.get("completions") is not None:
        return f"{succeeded}/{spec['completions']}"
    parallelism = spec.get("parallelism") or 0
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _duration(status: Obj) -> str:
    start = parse_time(str(status.get("startTime") or ""))
    if start is None:
        return ""
    end = parse_time(str(status.get("completionTime") or "")) or utcnow()
    return human_duration((end - start).total_seconds())


JOB_COLUMNS = (
    Column("Status", description="Status of the job."),
    Column("Completions", description="The desired number of successfully finished pods the job should be run "
                                      "with."),
    Column("Duration", description="Time required to complete the job."),
    AGE, CONTAINERS, IMAGES,
    Column("Selector", priority=1, description="A label query over pods that should match the pod count."),
)


# ---------------------------------------------------------------------------------------------
# cronjobs


def _valid_schedule(schedule: str) -> bool:
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        return False  # kube-apiserver rejects time zones in the schedule: spec.timeZone is the field
    if text in CRON_MACROS or text.startswith("@every "):
        return True
    return len(text.split()) == 5


class CronJobStrategy(Strategy):
    """CronJobs (``cronJobStrategy``)."""

    has_status = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {}

    def default(self, obj: Obj) -> None:
        spec = child_dict(obj, "spec")
        spec.setdefault("concurrencyPolicy", "Allow")
        if spec.get("suspend") is None:
            spec["suspend"] = False
        if spec.get("successfulJobsHistoryLimit") is None:
            spec["successfulJobsHistoryLimit"] = 3
        if spec.get("failedJobsHistoryLimit") is None:
            spec["failedJobsHistoryLimit"] = 1
        podspec.default_pod_template(child_dict(child_dict(child_dict(spec, "jobTemplate"), "spec"), "template"))

    def validate(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        errs: list[Cause] = []
        schedule = spec.get("schedule")
        if not schedule:
            errs.append(fe.required("spec.schedule"))
        elif not _valid_schedule(str(schedule)):
            errs.append(fe.invalid("spec.schedule", schedule, "unparseable schedule"))
        policy = spec.get("concurrencyPolicy")
        if policy not in CONCURRENCY_POLICIES:
            errs.append(fe.not_supported("spec.concurrencyPolicy", policy or "", CONCURRENCY_POLICIES))
        for name in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
            errs.extend(fe.nonnegative(f"spec.{name}", spec.get(name)))
        job_spec = as_dict(as_dict(spec.get("jobTemplate")).get("spec"))
        errs.extend(_validate_job_spec(job_spec, "spec.jobTemplate.spec", selector_required=False))
        return errs

    def columns(self) -> list[Column]:
        return list(CRONJOB_COLUMNS)

    def cells(self, obj: Obj) -> list[Any]:
        spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
        job_spec = as_dict(as_dict(spec.get("jobTemplate")).get("spec"))
        names, images = container_cells(dicts(as_dict(as_dict(job_spec.get("template")).get("spec"))
                                              .get("containers")))
        last = status.get("lastScheduleTime")
        last_text = age({"metadata": {"creationTimestamp": last}}) if last else NONE
        selector = selector_string(job_spec.get("selector"))
        return [spec.get("schedule") or "", spec.get("timeZone") or NONE, bool(spec.get("suspend")),
                len(as_list(status.get("active"))), last_text, age(obj), names, images,
                "<error>" if selector is None else (selector or NONE)]


CRONJOB_COLUMNS = (
    Column("Schedule", description="The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    Column("Timezone", description="The time zone name for the given schedule."),
    Column("Suspend", "boolean", description="This flag tells the controller to suspend subsequent executions."),
    Column("Active", "integer", description="A list of pointers to currently running jobs."),
    Column("Last Schedule", description="Information when was the last time the job was successfully scheduled."),
    AGE, CONTAINERS, IMAGES,
    Column("Selector", priority=1, description="A label query over pods that should match the pod count."),
)


def resources() -> list[ResourceType]:
    return [
        ResourceType("batch", "v1", "Job", "jobs", "job", True, categories=("all",), subresources=("status",),
                     verbs=ALL_VERBS, storage_resource="jobs", strategy=JobStrategy()),
        ResourceType("batch", "v1", "CronJob", "cronjobs", "cronjob", True, short_names=("cj",),
                     categories=("all",), subresources=("status",), verbs=ALL_VERBS, storage_resource="cronjobs",
                     strategy=CronJobStrategy()),
    ]
