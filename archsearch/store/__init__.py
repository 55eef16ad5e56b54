"""Store room: every task, trial, epoch and recommendation, through SQLAlchemy.

SQLite (WAL) by default, PostgreSQL by URL. Writes go through one transaction scope; the schema
is created and upgraded by the Alembic migrations shipped in this package: by the writing paths
and ``archsearch db upgrade``, while the reading paths refuse a schema that is behind.
"""

from archsearch.store.records import (
    EpochRecord,
    RecommendationRecord,
    TaskRecord,
    TrialRecord,
)
from archsearch.store.session import (
    DatabaseError,
    OutdatedSchema,
    head_revision,
    schema_revision_of,
    write_failure,
)
from archsearch.store.store import Store

__all__ = ["DatabaseError", "EpochRecord", "OutdatedSchema", "RecommendationRecord", "Store",
           "TaskRecord", "TrialRecord", "head_revision", "schema_revision_of", "write_failure"]
