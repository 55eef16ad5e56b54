"""floors: each task's measured floor (a classical model fitted before the search)

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "archsearch_floors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("val_score", sa.Float(), nullable=True),
        sa.Column("test_score", sa.Float(), nullable=True),
        sa.Column("fit_seconds", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("size_mb", sa.Float(), nullable=False),
        sa.Column("train_series", sa.Integer(), nullable=False),
        sa.Column("cv_mean", sa.Float(), nullable=True),
        sa.Column("cv_std", sa.Float(), nullable=True),
        sa.Column("cv_folds", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["archsearch_tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id"),
    )


def downgrade() -> None:
    op.drop_table("archsearch_floors")
