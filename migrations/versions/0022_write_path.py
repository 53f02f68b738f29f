"""AE write path (#14)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 12:10:00

Reserved in the chain so the work in flight can land in any order; it changes nothing
until its work fills it in.
"""


# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
