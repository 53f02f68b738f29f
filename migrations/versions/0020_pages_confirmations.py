"""pages: confirmations and id filters (#8)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 12:10:00

Reserved in the chain so the work in flight can land in any order; it changes nothing
until its work fills it in.
"""


# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
