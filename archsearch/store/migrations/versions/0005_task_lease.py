"""tasks: the lease of the driver running a task, and a cancel request for it

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch (copy-and-move) of the tasks table would break the foreign keys
    # of the trials that point at it on SQLite.
    op.add_column("archsearch_tasks", sa.Column("lease_owner", sa.String(length=64),
                                                nullable=True))
    op.add_column("archsearch_tasks", sa.Column("lease_expires_at", sa.DateTime(),
                                                nullable=True))
    op.add_column("archsearch_tasks", sa.Column("cancel_requested", sa.Boolean(),
                                                nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("archsearch_tasks") as batch_op:
        batch_op.drop_column("cancel_requested")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
