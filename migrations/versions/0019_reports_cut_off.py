"""report cut-off choice and journeys (#15)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 12:10:00

Reserved in the chain so the work in flight can land in any order; it changes nothing
until its work fills it in.
"""


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
