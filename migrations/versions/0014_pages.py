"""pages: account and page settings (#8)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 09:10:00

Reserved in the chain so the work in flight can land in any order; it changes nothing
until its work fills it in.
"""


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
