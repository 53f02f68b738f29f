"""auth sessions: a per-user session generation

Every browser session's id carries the user's session generation; logout, password and role
changes, deactivation and an administrator's "sign out everywhere" move it on, which ends
the user's sessions on the server. Existing users start at 0. Sessions issued before this
revision carry no generation (nor a sign-in time) and end: everyone signs in again once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 05:45:09.559960

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    # SQLite adds the column in place (ALTER TABLE ... ADD COLUMN with a constant default);
    # the server default fills the existing rows on both databases.
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('session_generation')
