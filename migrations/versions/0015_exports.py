"""exports: de-identification offsets and export records (#13)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 09:10:00

Reserved in the chain so the work in flight can land in any order; it changes nothing
until its work fills it in.
"""


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
