"""The results database: :class:`Store`, every task, trial, epoch and recommendation."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from archsearch.errors import NotFoundError
from archsearch.store.lease import LeaseLost, lease_seconds
from archsearch.store.models import (
    EpochRow,
    FloorRow,
    RecommendationRow,
    TaskRow,
    TrialRow,
    utcnow,
)
from archsearch.store.records import (
    EpochRecord,
    RecommendationRecord,
    TaskRecord,
    TrialRecord,
)
from archsearch.store.session import (
    create_db_engine,
    refuse_outdated,
    schema_revision_of,
    session_scope,
)
from archsearch.store.session import upgrade as _upgrade
from archsearch.types import (
    CostMeasurement,
    EpochReport,
    FloorResult,
    Metric,
    TaskStatus,
    TrialOutcome,
    TrialStatus,
)

_TASK_FIELDS = {f.name for f in fields(TaskRecord)} - {"metric", "floor"}
_FLOOR_FIELDS = [f.name for f in fields(FloorResult)]
_TRIAL_FIELDS = {f.name for f in fields(TrialRecord)} - {"epochs"}
_UNFINISHED = (TaskStatus.QUEUED.value, TaskStatus.RUNNING.value)


class Store:
    """The results database; ``with Store(url) as store:`` closes it at the end of the block.

    A writing path opens it as is, which applies the schema migrations shipped in the package;
    a reading path opens it with ``upgrade=False``, which refuses a schema that is behind
    (:class:`~archsearch.store.session.OutdatedSchema`) rather than changing the database. A
    database without an archsearch schema yet gets one either way: there is nothing to lose.
    """

    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        try:
            revision = None if upgrade else schema_revision_of(self.engine)
            if revision is None:
                _upgrade(self.engine)
            else:
                refuse_outdated(self.engine, revision)
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._fence: tuple[int, str] | None = None  # (task, lease owner): see fence()

    def fence(self, task_id: int, owner: str) -> None:
        """From now on, this store's writes to ``task_id`` (its trials, epochs, floor,
        recommendations, columns) commit only while ``owner`` holds the task's lease: a driver
        whose lease another driver took raises :class:`~archsearch.store.lease.LeaseLost`
        instead of writing over it."""
        self._fence = (task_id, owner)

    @contextmanager
    def _writing(self, task_id: int) -> Iterator[Session]:
        """:func:`session_scope`, fenced (see :meth:`fence`): the lease is read after the
        writes are flushed, when the transaction holds the write lock (SQLite) or the task's
        row (PostgreSQL, FOR UPDATE), so no other driver can take the lease before the commit."""
        with session_scope(self._sessions) as session:
            yield session
            if self._fence is not None and self._fence[0] == task_id:
                session.flush()
                holder = session.scalar(select(TaskRow.lease_owner)
                                        .where(TaskRow.id == task_id).with_for_update())
                if holder != self._fence[1]:
                    raise LeaseLost(task_id, "another driver holds its lease now"
                                    if holder else "its lease lapsed")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- tasks ---------------------------------------------------------------------------------
    def create_task(self, *, source: str, dataset_name: str, task_kind: str, metric: Metric,
                    seed: int, constraints: dict[str, Any], options: dict[str, Any],
                    space_name: str, meta_features: dict[str, Any], fingerprint: str | None,
                    budget_trials: int | None, budget_minutes: float | None,
                    status: TaskStatus = TaskStatus.RUNNING) -> int:
        with session_scope(self._sessions) as session:
            row = TaskRow(
                status=status.value, source=source, dataset_name=dataset_name,
                task_kind=task_kind, metric_name=metric.name, metric_direction=metric.direction,
                seed=seed, constraints=constraints, options=options, space_name=space_name,
                meta_features=meta_features, fingerprint=fingerprint,
                budget_trials=budget_trials, budget_minutes=budget_minutes,
            )
            session.add(row)
            session.flush()
            return row.id

    def update_task(self, task_id: int, **values: Any) -> None:
        """Set task columns (status, best_trial_id, report_path, error, optuna_study, ...)."""
        with self._writing(task_id) as session:
            row = self._task_row(session, task_id)
            for key, value in values.items():
                if key not in _TASK_FIELDS:
                    raise AttributeError(f"TaskRow has no column {key}")
                setattr(row, key, value.value if isinstance(value, TaskStatus) else value)

    def get_task(self, task_id: int) -> TaskRecord:
        with session_scope(self._sessions) as session:
            return _task_record(self._task_row(session, task_id))

    def list_tasks(self, limit: int | None = None, offset: int = 0,
                   newest_first: bool = False) -> list[TaskRecord]:
        """The tasks by id, oldest first (or newest first); a page of them with ``limit`` and
        ``offset``, cut in SQL."""
        order = TaskRow.id.desc() if newest_first else TaskRow.id
        with session_scope(self._sessions) as session:
            rows = session.scalars(select(TaskRow).order_by(order)
                                   .limit(limit).offset(offset)).all()
            return [_task_record(row) for row in rows]

    # -- leases: which driver runs a task (see archsearch.store.lease) ----------------------
    def acquire_lease(self, task_id: int, owner: str, seconds: float) -> bool:
        """Take the task's lease for ``owner`` in one compare-and-set UPDATE: only when no
        driver holds it, its holder let it lapse, or ``owner`` holds it already. A new holder
        starts without a cancel request."""
        now = utcnow()
        with session_scope(self._sessions) as session:
            self._task_row(session, task_id)  # NotFoundError for a task that does not exist
            taken = session.execute(
                update(TaskRow).where(TaskRow.id == task_id, _lease_free(now, owner))
                .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=seconds),
                        cancel_requested=False))
            return taken.rowcount == 1

    def renew_lease(self, task_id: int, owner: str, seconds: float) -> tuple[bool, bool]:
        """Extend ``owner``'s lease; (still held, a cancel was requested)."""
        now = utcnow()
        with session_scope(self._sessions) as session:
            renewed = session.execute(
                update(TaskRow).where(TaskRow.id == task_id, TaskRow.lease_owner == owner)
                .values(lease_expires_at=now + timedelta(seconds=seconds),
                        updated_at=TaskRow.updated_at))  # a renewal is not a change of the task
            if renewed.rowcount != 1:
                return False, False
            return True, bool(session.scalar(select(TaskRow.cancel_requested)
                                             .where(TaskRow.id == task_id)))

    def request_cancel(self, task_id: int) -> bool:
        """Ask the live driver of a queued or running task to stop (it reads the request when
        it renews its lease); False when no live driver holds the task."""
        now = utcnow()
        with session_scope(self._sessions) as session:
            self._task_row(session, task_id)
            asked = session.execute(
                update(TaskRow).where(TaskRow.id == task_id, TaskRow.status.in_(_UNFINISHED),
                                      TaskRow.lease_owner.is_not(None),
                                      TaskRow.lease_expires_at >= now)
                .values(cancel_requested=True))
            return asked.rowcount == 1

    def settle(self, task_id: int, owner: str, **values: Any) -> bool:
        """Write a task's ending (status, error, report path, ...) and release the lease, only
        while ``owner`` holds it: a driver that lost its lease writes nothing over the new
        holder. False when the lease was lost."""
        with session_scope(self._sessions) as session:
            unknown = set(values) - _TASK_FIELDS
            if unknown:
                raise AttributeError(f"TaskRow has no column {sorted(unknown)[0]}")
            settled = session.execute(
                update(TaskRow).where(TaskRow.id == task_id, TaskRow.lease_owner == owner)
                .values(**{k: v.value if isinstance(v, TaskStatus) else v
                           for k, v in values.items()},
                        lease_owner=None, lease_expires_at=None, cancel_requested=False))
            return settled.rowcount == 1

    def end_unfinished(self, task_id: int, status: TaskStatus, error: str,
                       owner: str | None = None) -> bool:
        """End a queued or running task, and fail its running trials, in one transaction; only
        when no live driver but ``owner`` holds its lease (a task someone else runs, or that
        already ended, is left alone). True when it was ended here."""
        now = utcnow()
        with session_scope(self._sessions) as session:
            ended = session.execute(
                update(TaskRow).where(TaskRow.id == task_id, TaskRow.status.in_(_UNFINISHED),
                                      _lease_free(now, owner))
                .values(status=status.value, error=error[:2000], lease_owner=None,
                        lease_expires_at=None, cancel_requested=False))
            if ended.rowcount != 1:
                return False
            for row in session.scalars(select(TrialRow).where(
                    TrialRow.task_id == task_id,
                    TrialRow.status == TrialStatus.RUNNING.value)).all():
                self._mark(row, TrialStatus.FAILED, error)
            return True

    @staticmethod
    def _task_row(session, task_id: int) -> TaskRow:  # noqa: ANN001
        row = session.get(TaskRow, task_id)
        if row is None:
            raise NotFoundError(f"task {task_id} is not in the database.")
        return row

    # -- the floor -----------------------------------------------------------------------------
    def save_floor(self, task_id: int, floor: FloorResult) -> None:
        """Store (or replace) the task's measured floor; read it back as ``TaskRecord.floor``."""
        with self._writing(task_id) as session:
            task = self._task_row(session, task_id)
            row = task.floor
            if row is None:
                row = FloorRow(task_id=task_id)
                session.add(row)
            for name in _FLOOR_FIELDS:
                setattr(row, name, getattr(floor, name))

    def record_floor_cross_validation(self, task_id: int, mean: float, std: float, folds: int,
                                      bag_test_score: float | None = None) -> None:
        """The floor's k-fold score on the folds the search's finalists were scored on, and the
        test score of its fold models' bag."""
        with self._writing(task_id) as session:
            row = self._task_row(session, task_id).floor
            if row is None:
                raise NotFoundError(f"task {task_id} has no floor to cross-validate.")
            row.cv_mean, row.cv_std, row.cv_folds = mean, std, folds
            row.bag_test_score = bag_test_score

    # -- trials --------------------------------------------------------------------------------
    def start_trial(self, task_id: int, number: int, family: str, config: dict[str, Any],
                    tune_trial_id: str | None = None) -> None:
        """Record a trial as running (idempotent per (task, number): a rerun resets it)."""
        with self._writing(task_id) as session:
            row = self._trial_row(session, task_id, number, missing_ok=True)
            if row is None:
                row = TrialRow(task_id=task_id, number=number)
                session.add(row)
            else:
                for epoch in list(row.epochs):
                    session.delete(epoch)
            row.family, row.config, row.tune_trial_id = family, config, tune_trial_id
            row.status, row.error, row.epochs_run = TrialStatus.RUNNING.value, None, 0
            row.started_at, row.finished_at = utcnow(), None

    def record_epoch(self, task_id: int, number: int, report: EpochReport) -> None:
        """Store one epoch; a retried trial (Ray restarts a crashed worker) overwrites it."""
        with self._writing(task_id) as session:
            row = self._trial_row(session, task_id, number)
            epoch = session.scalars(select(EpochRow).where(EpochRow.trial_id == row.id,
                                                           EpochRow.epoch == report.epoch)
                                    ).one_or_none()
            if epoch is None:
                epoch = EpochRow(trial_id=row.id, epoch=report.epoch)
                session.add(epoch)
            epoch.train_loss, epoch.val_score = report.train_loss, report.val_score
            epoch.elapsed_s = report.elapsed_s
            row.epochs_run = report.epoch
            row.train_seconds = report.elapsed_s

    def finish_trial(self, task_id: int, number: int, outcome: TrialOutcome) -> None:
        with self._writing(task_id) as session:
            row = self._trial_row(session, task_id, number)
            row.status = outcome.status.value
            row.error = outcome.error
            row.epochs_run = max(outcome.epochs_run, row.epochs_run)
            row.val_score, row.test_score = outcome.val_score, outcome.test_score
            row.best_epoch = outcome.best_epoch
            row.train_seconds = max(outcome.train_seconds, row.train_seconds)
            if outcome.cost is not None:
                _set_cost(row, outcome.cost)
            row.finished_at = utcnow()

    def record_cost(self, task_id: int, number: int, cost: CostMeasurement,
                    node_id: str | None = None) -> None:
        """Store the cost measured on the untrained model (before any epoch), and where."""
        with self._writing(task_id) as session:
            row = self._trial_row(session, task_id, number)
            _set_cost(row, cost)
            row.node_id = node_id

    def record_retry(self, task_id: int, number: int, reason: str) -> int:
        """Count a failed attempt that Ray runs again (its epochs are then reported afresh);
        the reason stands as the trial's error until it ends. Returns the retries so far."""
        with self._writing(task_id) as session:
            row = self._trial_row(session, task_id, number)
            row.retries += 1
            row.error = f"attempt {row.retries} failed ({reason}); Ray runs it again"
            return row.retries

    def record_cross_validation(self, task_id: int, number: int, mean: float, std: float,
                                folds: int) -> None:
        with self._writing(task_id) as session:
            row = self._trial_row(session, task_id, number)
            row.cv_score, row.cv_std, row.cv_folds = mean, std, folds

    def record_bag(self, task_id: int, number: int, test_score: float) -> None:
        """The test score of the bag of a finalist's fold models (the answer on small data)."""
        with self._writing(task_id) as session:
            self._trial_row(session, task_id, number).bag_test_score = test_score

    def delete_trial(self, task_id: int, number: int) -> None:
        """Remove a trial and its epochs (an interrupted trial about to be run again)."""
        with self._writing(task_id) as session:
            row = self._trial_row(session, task_id, number)
            for epoch in list(row.epochs):
                session.delete(epoch)
            session.delete(row)

    def mark_trial(self, task_id: int, number: int, status: TrialStatus,
                   error: str | None = None) -> None:
        """Change a trial's status only (pruned, or failed by the scheduler)."""
        with self._writing(task_id) as session:
            self._mark(self._trial_row(session, task_id, number), status, error)

    @classmethod
    def _mark(cls, row: TrialRow, status: TrialStatus, error: str | None) -> None:
        row.status, row.error, row.finished_at = status.value, error, utcnow()
        if row.epochs:
            best = max(row.epochs, key=lambda e: cls._signed(row.task, e.val_score))
            row.val_score, row.best_epoch = best.val_score, best.epoch

    @staticmethod
    def _signed(task: TaskRow, value: float) -> float:
        return Metric(task.metric_name, task.metric_direction).sign * value

    def trials(self, task_id: int, limit: int | None = None, offset: int = 0,
               with_epochs: bool = True) -> list[TrialRecord]:
        """The task's trials by number; a page of them with ``limit`` and ``offset``, cut in
        SQL. Without ``with_epochs``, their learning curves are not read (``epochs`` empty)."""
        query = (select(TrialRow).where(TrialRow.task_id == task_id)
                 .order_by(TrialRow.number).limit(limit).offset(offset))
        if with_epochs:
            query = query.options(selectinload(TrialRow.epochs))
        with session_scope(self._sessions) as session:
            return [_trial_record(row, with_epochs) for row in session.scalars(query).all()]

    @staticmethod
    def _trial_row(session, task_id: int, number: int,  # noqa: ANN001
                   missing_ok: bool = False) -> TrialRow | None:
        row = session.scalars(select(TrialRow).where(TrialRow.task_id == task_id,
                                                     TrialRow.number == number)).one_or_none()
        if row is None and not missing_ok:
            raise NotFoundError(f"trial {number} of task {task_id} is not in the database.")
        return row

    def past_winners(self, exclude_task_id: int) -> list[tuple[TaskRecord, TrialRecord]]:
        """Each other completed task with its best trial (for warm starts)."""
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(TaskRow, TrialRow).join(TrialRow, TrialRow.id == TaskRow.best_trial_id)
                .where(TaskRow.status == TaskStatus.COMPLETED.value,
                       TaskRow.id != exclude_task_id)
                .order_by(TaskRow.id)
            ).all()
            return [(_task_record(task), _trial_record(trial, with_epochs=False))
                    for task, trial in rows]

    def past_results(self, exclude: Iterable[int] = ()
                     ) -> list[tuple[TaskRecord, dict[str, TrialRecord]]]:
        """Every completed task (but those in ``exclude``), oldest first, with its best
        completed trial per family by the task's own metric (trials without a finite
        validation score are left out, and so are tasks left with none): what the recommender
        learns from."""
        excluded = set(exclude)
        with session_scope(self._sessions) as session:
            tasks = [row for row in session.scalars(
                select(TaskRow).where(TaskRow.status == TaskStatus.COMPLETED.value)
                .order_by(TaskRow.id)).all() if row.id not in excluded]
            by_id = {row.id: row for row in tasks}
            best: dict[int, dict[str, TrialRow]] = {}
            trials = session.scalars(
                select(TrialRow).where(TrialRow.status == TrialStatus.COMPLETED.value,
                                       TrialRow.val_score.is_not(None))
                .order_by(TrialRow.task_id, TrialRow.number)).all()
            for trial in trials:
                task = by_id.get(trial.task_id)
                if task is None or not math.isfinite(trial.val_score):
                    continue
                held = best.setdefault(task.id, {}).get(trial.family)
                if held is None or (self._signed(task, trial.val_score)
                                    > self._signed(task, held.val_score)):
                    best[task.id][trial.family] = trial
            return [(_task_record(task),
                     {family: _trial_record(trial, with_epochs=False)
                      for family, trial in sorted(best[task.id].items())})
                    for task in tasks if best.get(task.id)]

    def schema_revision(self) -> str | None:
        """The Alembic revision the database's schema is at (None: no archsearch schema)."""
        return schema_revision_of(self.engine)

    # -- recommendations -----------------------------------------------------------------------
    def save_recommendation(self, task_id: int, rec: RecommendationRecord) -> None:
        with self._writing(task_id) as session:
            session.add(RecommendationRow(task_id=task_id, family=rec.family, config=rec.config,
                                          confidence=rec.confidence, rationale=rec.rationale,
                                          ranking=rec.ranking))

    def latest_recommendation(self, task_id: int) -> RecommendationRecord | None:
        with session_scope(self._sessions) as session:
            row = session.scalars(select(RecommendationRow)
                                  .where(RecommendationRow.task_id == task_id)
                                  .order_by(RecommendationRow.id.desc())).first()
            if row is None:
                return None
            return RecommendationRecord(row.family, row.config, row.confidence,
                                        list(row.rationale), list(row.ranking))


def _set_cost(row: TrialRow, cost: CostMeasurement) -> None:
    row.params, row.flops = cost.params, cost.flops
    row.latency_ms, row.latency_p95_ms = cost.latency_ms, cost.latency_p95_ms
    row.peak_memory_mb, row.memory_method = cost.peak_memory_mb, cost.memory_method
    row.device = cost.device


def _lease_free(now: datetime, owner: str | None) -> ColumnElement[bool]:
    """No live driver holds the task's lease, or ``owner`` does."""
    free = or_(TaskRow.lease_owner.is_(None), TaskRow.lease_expires_at < now)
    return free if owner is None else or_(free, TaskRow.lease_owner == owner)


def _task_record(row: TaskRow) -> TaskRecord:
    values = {name: getattr(row, name) for name in _TASK_FIELDS}
    now, why = utcnow(), None
    if (row.status in _UNFINISHED and row.lease_expires_at is not None
            and row.lease_expires_at < now):
        # Its driver stopped renewing (killed, or its machine or database went away): the
        # stored status cannot be trusted, and the task can be resumed.
        why = (f"its driver stopped renewing its lease (lapsed at "
               f"{row.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC, while {row.status})")
    elif (row.status == TaskStatus.QUEUED.value and row.lease_owner is None
          and row.created_at < now - timedelta(seconds=lease_seconds())):
        # A driver takes the lease within moments of the task being stored; none did for a
        # whole lease (its server was stopped in between), so none will.
        why = "no driver ever took it (its server stopped before its driver started)"
    if why:
        values["status"] = TaskStatus.INTERRUPTED.value
        values["error"] = (f"{why}: continue it with `archsearch search --resume {row.id}` or "
                           f"POST /tasks/{row.id}/resume.")
    floor = (None if row.floor is None
             else FloorResult(**{name: getattr(row.floor, name) for name in _FLOOR_FIELDS}))
    return TaskRecord(metric=Metric(row.metric_name, row.metric_direction), floor=floor,
                      **values)


def _trial_record(row: TrialRow, with_epochs: bool = True) -> TrialRecord:
    values = {name: getattr(row, name) for name in _TRIAL_FIELDS}
    epochs = tuple(EpochRecord(e.epoch, e.train_loss, e.val_score, e.elapsed_s)
                   for e in row.epochs) if with_epochs else ()
    return TrialRecord(epochs=epochs, **values)
