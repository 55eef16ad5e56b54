"""trials: cross-validation score of finalists (honest selection on small data)

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("archsearch_trials") as batch_op:
        batch_op.add_column(sa.Column("cv_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("cv_std", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("cv_folds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("archsearch_trials") as batch_op:
        batch_op.drop_column("cv_folds")
        batch_op.drop_column("cv_std")
        batch_op.drop_column("cv_score")
