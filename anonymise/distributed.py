"""``--engine ray``: a folder of videos spread over a Ray cluster, one video per worker at a time.

Each worker is a Ray actor holding its own :class:`~anonymise.pipeline.Anonymiser` (models load
once per actor) and processes whole files end to end, writing straight to the output path, which
must be on a filesystem every node sees (outputs are written atomically by the pipeline, so a
worker that dies leaves at most a hidden ``.partial`` file). The driver only plans the jobs
(:func:`~anonymise.jobs.plan_jobs`, the same skip-existing rule as a local run), hands them
out through a work queue and collects a :class:`~anonymise.jobs.BatchReport` in input order.

A file that fails (corrupt, unreadable ...) is reported failed, as in a local run, and the worker
goes on. A worker that dies (segfault, out of memory, lost node) is replaced and its file retried
up to ``retries`` times, then reported failed.

Privacy: Ray's usage statistics are switched off before Ray starts and no dashboard is started.
Ray's processes talk to each other over local (and, on a cluster, intra-cluster) sockets; only
file paths, settings and results travel over them, never frames, and nothing leaves the cluster.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .errors import AnonymiseError, ConfigError
from .jobs import BatchReport, FileResult, Job, Plan, plan_jobs, run_job
from .progress import Progress
from .sidecars import Extras

log = logging.getLogger(__name__)

INSTALL_HINT = '--engine ray needs Ray: pip install -e ".[ray]"'
#: seconds an interrupted run waits for workers to remove their partial outputs
CANCEL_GRACE_S = 15.0
#: seconds between two looks (in a worker) at whether the driver cancelled the running file
CANCEL_POLL_S = 0.25
#: environment variables handed to the workers (model folders, export cache, calibration images)
FORWARDED_ENV = ("ANONYMISE_",)
_next_cancel_check = 0.0


def import_ray():
    """The ``ray`` module, or :class:`ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


@dataclass
class _Outcome:
    """What a worker hands back for one job: the result, and for a failure the error to raise on a single input."""

    result: FileResult
    error: AnonymiseError | None = None
    #: the worker could not build its models: the whole run stops with ``error``
    fatal: bool = False


def _raise_if_cancelled() -> None:
    """Ctrl-C (``KeyboardInterrupt``) in a Ray worker whose running file the driver cancelled.

    Ray cannot interrupt a method of a regular actor; it only flags it. Raising here, at each
    model call and each written frame, makes the pipeline remove the file's partial output.
    """
    global _next_cancel_check
    now = time.monotonic()
    if now < _next_cancel_check:
        return
    _next_cancel_check = now + CANCEL_POLL_S
    import ray

    context = ray.get_runtime_context()
    try:
        cancelled = context.is_canceled()
    except (AttributeError, RuntimeError):  # an older Ray, or not inside a task
        return
    if cancelled:
        raise KeyboardInterrupt


class _CancelWatch(Progress):
    """A silent progress bar that checks, at each written frame, whether the driver cancelled the file."""

    def __init__(self):
        super().__init__(enabled=False)

    def advance(self, n: int = 1) -> None:
        _raise_if_cancelled()


class _CancellableDetector:
    """The worker's detector, checking before each call whether the driver cancelled the file."""

    def __init__(self, detector: Callable):
        self._detector = detector

    def __call__(self, *args, **kwargs):
        _raise_if_cancelled()
        return self._detector(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._detector, name)


class Worker:
    """The body of a Ray actor: one :class:`Anonymiser`, whole files one at a time.

    ``detector_factory``: a picklable callable returning a detector (see :class:`Anonymiser`),
    called once in the actor; ``None`` loads the models ``config`` names.
    """

    def __init__(self, config: Config, detector_factory: Callable[[], Callable] | None = None):
        from .pipeline import Anonymiser

        self.error: AnonymiseError | None = None
        try:
            detector = detector_factory() if detector_factory is not None else None
            self.anonymiser = Anonymiser(config, detector=detector)
            if _in_ray():
                self.anonymiser.detector = _CancellableDetector(self.anonymiser.detector)
        except Exception as e:  # noqa: BLE001 - reported to the driver, which stops the run
            self.error = (
                e
                if isinstance(e, AnonymiseError)
                else AnonymiseError(f"a Ray worker could not load the models: {type(e).__name__}: {e}")
            )

    def process(self, plan: Plan, job: Job, audio: bool) -> _Outcome:
        if self.error is not None:
            return _Outcome(FileResult(job.name, job.output, "failed", message=str(self.error)), self.error, fatal=True)
        progress = _CancelWatch() if _in_ray() else None
        result, error = run_job(self.anonymiser, plan, job, audio=audio, progress=progress)
        if error is not None and not isinstance(error, AnonymiseError):  # sent to the driver: one line
            error = AnonymiseError(result.message)
        return _Outcome(result, error)


def run_ray(
    config: Config,
    source: str | Path | Plan,
    output: str | Path | None = None,
    *,
    extras: Extras | None = None,
    overwrite: bool = False,
    audio: bool = True,
    address: str | None = None,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    cpus_per_actor: float = 1,
    retries: int = 1,
    progress: bool = False,
    detector_factory: Callable[[], Callable] | None = None,
) -> BatchReport:
    """Anonymise a folder (or one file) on a Ray cluster; the same outputs and report as :meth:`Anonymiser.run`.

    ``source``: a :class:`~anonymise.jobs.Plan` (the CLI's), or a source to plan here with
    ``output``, ``extras`` and ``overwrite``. ``address``: a Ray cluster (``auto``, ``host:port``,
    ``ray://host:10001``); ``None`` joins the one in ``$RAY_ADDRESS`` or else starts a local
    instance (stopped at the end). A Ray already initialised in this process is used as it is and
    left running. ``actors``: how many workers (default: as many as the cluster's GPUs, or CPUs,
    hold, at most one per file); ``gpus_per_actor`` (default: 1 where the cluster has GPUs and
    ``config.device`` is not ``cpu``, else 0; fractions such as 0.5 share a GPU) and
    ``cpus_per_actor`` are each worker's Ray resources. ``retries``: how often a file whose worker
    died is tried again. ``detector_factory``: see :class:`Worker`. Output paths must be on a
    filesystem every Ray node sees.
    """
    _check_options(config, actors, gpus_per_actor, cpus_per_actor, retries)
    plan = source if isinstance(source, Plan) else plan_jobs(source, output, extras, overwrite)
    if plan.source.kind.live:
        raise ConfigError(
            f"--engine ray takes files and folders, not a {plan.source.kind} ({plan.source.spec}); use --engine local"
        )
    ray = import_ray()
    results: list[FileResult | None] = [plan.skipped(job) for job in plan.jobs]
    todo = [i for i, result in enumerate(results) if result is None]
    jobs = len(plan.jobs)
    with Progress(enabled=progress and jobs > 1, files=jobs) as bar:  # files only: frames are in the workers
        for _ in range(jobs - len(todo)):
            bar.end_file()
        if todo:
            started = _init_ray(ray, address)
            local = started and address in (None, "local") and not os.environ.get("RAY_ADDRESS")
            try:
                _dispatch(
                    ray,
                    config,
                    plan,
                    todo,
                    results,
                    audio,
                    local,
                    bar,
                    actors,
                    gpus_per_actor,
                    cpus_per_actor,
                    retries,
                    detector_factory,
                )
            finally:
                if started:
                    ray.shutdown()
    return BatchReport([r for r in results if r is not None])


def _check_options(config: Config, actors, gpus_per_actor, cpus_per_actor, retries) -> None:
    if actors is not None and (isinstance(actors, bool) or not isinstance(actors, int) or actors < 1):
        raise ConfigError(f"ray actors must be an integer >= 1, got {actors!r}")
    for name, value in (("gpus_per_actor", gpus_per_actor), ("cpus_per_actor", cpus_per_actor)):
        if value is None and name == "gpus_per_actor":
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value < 0
            or (name == "cpus_per_actor" and value == 0)
        ):
            raise ConfigError(
                f"ray {name} must be a number {'>= 0' if name == 'gpus_per_actor' else '> 0'}, got {value!r}"
            )
    if gpus_per_actor is not None and gpus_per_actor > 1 and gpus_per_actor != int(gpus_per_actor):
        raise ConfigError(f"ray gpus_per_actor above 1 must be a whole number, got {gpus_per_actor!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"ray retries must be an integer >= 0, got {retries!r}")
    device = str(config.device).lower()
    if device.startswith("cuda:"):
        raise ConfigError(
            f"--device {config.device} with --engine ray: Ray gives each worker its GPU(s); use --device auto or cuda"
        )


def _init_ray(ray, address: str | None) -> bool:
    """Connect to (or start) Ray with telemetry off; True when this call did it (and so must shut it down)."""
    if ray.is_initialized():
        return False
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # read by ray.init (and by a local instance it starts)
    verbose = log.isEnabledFor(logging.INFO)
    kwargs = dict(include_dashboard=False, log_to_driver=verbose, logging_level=logging.WARNING)
    ray_log = logging.getLogger("ray")
    level = ray_log.level
    if not verbose:
        ray_log.setLevel(logging.ERROR)  # Ray's start-up notes (token auth ...) only with --verbose
    try:
        try:
            ray.init(address=address, configure_logging=False, **kwargs)
        except TypeError:  # a Ray without configure_logging
            ray.init(address=address, **kwargs)
    except ConnectionError as e:
        raise ConfigError(f"cannot reach the Ray cluster at {address or os.environ.get('RAY_ADDRESS')}: {e}") from None
    finally:
        ray_log.setLevel(level)
    return True


def _actor_options(ray, config: Config, gpus_per_actor, cpus_per_actor, local: bool) -> tuple[dict, int]:
    """Each actor's Ray resources, and how many such actors the cluster holds now."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if gpus_per_actor is None:
        has_gpus = any(n.get("GPU", 0) > 0 for n in nodes)
        gpus_per_actor = 1 if has_gpus and str(config.device).lower() != "cpu" else 0
    fits = 0
    for n in nodes:
        by_cpu = int(n.get("CPU", 0) // cpus_per_actor)
        fits += min(by_cpu, int(n.get("GPU", 0) // gpus_per_actor)) if gpus_per_actor else by_cpu
    if fits == 0:
        want = f"{gpus_per_actor:g} GPU and {cpus_per_actor:g} CPU" if gpus_per_actor else f"{cpus_per_actor:g} CPU"
        if local:
            raise ConfigError(f"no Ray node has {want} for a worker; lower --ray-gpus-per-actor / --ray-cpus-per-actor")
        log.warning("no Ray node has %s for a worker now; waiting for the cluster to grow", want)
    options = {"num_cpus": cpus_per_actor, "num_gpus": gpus_per_actor, "max_restarts": 0}
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
    if env:  # merged with the job's own runtime_env by Ray
        options["runtime_env"] = {"env_vars": env}
    return options, max(fits, 1)


def _dispatch(
    ray,
    config,
    plan,
    todo,
    results,
    audio,
    local,
    bar,
    actors,
    gpus_per_actor,
    cpus_per_actor,
    retries,
    detector_factory,
) -> None:
    """Hand out ``todo`` (job indices) to actors, one file each at a time, filling ``results``."""
    from ray import exceptions as rex

    died = (
        rex.RayActorError,
        rex.WorkerCrashedError,
        rex.OutOfMemoryError,
        rex.ObjectLostError,
        getattr(rex, "NodeDiedError", rex.RayActorError),
    )
    options, fits = _actor_options(ray, config, gpus_per_actor, cpus_per_actor, local=local)
    target = min(actors or fits, len(todo))
    remote = ray.remote(Worker).options(**options)
    plan_ref = ray.put(plan)
    pending = deque(todo)
    attempts = dict.fromkeys(todo, 0)
    idle: list = []
    inflight: dict = {}  # object ref -> (job index, actor)
    alive: list = []
    log.info("Ray: %d workers (%s) for %d files", target, options, len(todo))
    try:
        while pending or inflight:
            while pending and (idle or len(alive) < target):
                if not idle:
                    actor = remote.remote(config, detector_factory)
                    alive.append(actor)
                    idle.append(actor)
                i, actor = pending.popleft(), idle.pop()
                attempts[i] += 1
                inflight[actor.process.remote(plan_ref, plan.jobs[i], audio)] = (i, actor)
            (ref,), _ = ray.wait(list(inflight), num_returns=1)
            i, actor = inflight.pop(ref)
            src, dst = plan.jobs[i].name, plan.jobs[i].output
            try:
                outcome: _Outcome = ray.get(ref)
            except died as e:
                alive.remove(actor)
                _kill(ray, actor)
                reason = _first_line(e)
                if attempts[i] <= retries:
                    log.warning("%s: Ray worker died (%s); retrying (%d of %d)", src, reason, attempts[i], retries)
                    pending.appendleft(i)
                    continue
                outcome = _Outcome(
                    FileResult(
                        str(src), dst, "failed", message=f"Ray worker died on every attempt ({attempts[i]}): {reason}"
                    )
                )
                outcome.error = AnonymiseError(outcome.result.message)
            except rex.RayError as e:  # e.g. the runtime environment could not be set up
                idle.append(actor)
                message = f"Ray: {_first_line(e)}"
                outcome = _Outcome(FileResult(str(src), dst, "failed", message=message), AnonymiseError(message))
            else:
                idle.append(actor)
            if outcome.fatal or (plan.single and outcome.error is not None):
                raise outcome.error
            results[i] = outcome.result
            bar.end_file()
    except BaseException:
        _cancel(ray, inflight)
        raise
    finally:
        for actor in alive:
            _kill(ray, actor)


def _cancel(ray, inflight: dict) -> None:
    """Interrupt running files (each worker removes its partial output), waiting a little for them."""
    for ref in inflight:
        try:
            ray.cancel(ref)
        except Exception:  # noqa: BLE001 - best effort
            pass
    if inflight:
        ray.wait(list(inflight), num_returns=len(inflight), timeout=CANCEL_GRACE_S)


def _kill(ray, actor) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - already gone
        pass


def _in_ray() -> bool:
    import sys

    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def _first_line(e: BaseException) -> str:
    """A Ray error in a few words: its first line, and why the worker exited where Ray says."""
    text = str(e)
    first = " ".join(text.split("\n", 1)[0].split()) or type(e).__name__
    exit_type = re.search(r"Worker exit type: (\w+)", text)
    return f"{first} (exit type {exit_type.group(1)})" if exit_type else first
