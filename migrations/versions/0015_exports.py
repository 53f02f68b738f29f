"""exports: de-identification offsets and export records (#13)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 09:10:00

The secret per-subject date shift of the de-identified analysis export; exports
themselves are recorded in the audit trail only.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('subject_date_shift',
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('offset_days', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('offset_days <> 0', name=op.f('ck_subject_date_shift_offset_not_zero')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_subject_date_shift_subject_id_subject')),
    sa.PrimaryKeyConstraint('subject_id', name=op.f('pk_subject_date_shift'))
    )


def downgrade():
    op.drop_table('subject_date_shift')
