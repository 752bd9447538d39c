"""The schema of nano-org 0.1.0: every table as ``db.create_all()`` made it before migrations existed.

Revision ID: 0001_initial
Revises: (none)
A bank created before migrations existed has exactly these tables: ``databank.schema`` stamps it
with this revision instead of running it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bank_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('last_failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_users_username'), 'users', ['username'], unique=True)
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_api_tokens_token_sha256'), 'api_tokens', ['token_sha256'], unique=True)
    op.create_index(op.f('ix_api_tokens_user_id'), 'api_tokens', ['user_id'], unique=False)
    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('visibility', sa.String(length=16), nullable=False),
    sa.Column('storage_key', sa.String(length=64), nullable=False),
    sa.Column('is_simulated', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('n_files', sa.Integer(), nullable=False),
    sa.Column('n_locs', sa.Integer(), nullable=False),
    sa.Column('n_tiles', sa.Integer(), nullable=False),
    sa.Column('density', sa.Float(), nullable=True),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('modality', sa.String(length=32), nullable=False),
    sa.Column('primary_antibody', sa.String(length=500), nullable=True),
    sa.Column('primary_antibody_ref', sa.String(length=500), nullable=True),
    sa.Column('secondary_antibody', sa.String(length=500), nullable=True),
    sa.Column('secondary_antibody_ref', sa.String(length=500), nullable=True),
    sa.Column('software', sa.String(length=32), nullable=False),
    sa.Column('fluorophore', sa.String(length=500), nullable=True),
    sa.Column('protein', sa.String(length=500), nullable=True),
    sa.Column('uniprot_id', sa.String(length=32), nullable=True),
    sa.Column('cell_type', sa.String(length=500), nullable=True),
    sa.Column('tags', sa.String(length=500), nullable=True),
    sa.Column('experimental_details', sa.Text(), nullable=True),
    sa.Column('doi', sa.String(length=500), nullable=True),
    sa.Column('contact_email', sa.String(length=500), nullable=True),
    sa.Column('raw_data_url', sa.String(length=500), nullable=True),
    sa.Column('drift_correction', sa.Boolean(), nullable=False),
    sa.Column('blink_correction', sa.Boolean(), nullable=False),
    sa.Column('pixel_size_nm', sa.Float(), nullable=True),
    sa.Column('licence_url', sa.String(length=500), nullable=True),
    sa.Column('publication_url', sa.String(length=500), nullable=True),
    sa.Column('repository_url', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('storage_key')
    )
    op.create_index(op.f('ix_datasets_cell_type'), 'datasets', ['cell_type'], unique=False)
    op.create_index(op.f('ix_datasets_modality'), 'datasets', ['modality'], unique=False)
    op.create_index(op.f('ix_datasets_owner_id'), 'datasets', ['owner_id'], unique=False)
    op.create_index(op.f('ix_datasets_protein'), 'datasets', ['protein'], unique=False)
    op.create_index(op.f('ix_datasets_title'), 'datasets', ['title'], unique=True)
    op.create_index(op.f('ix_datasets_visibility'), 'datasets', ['visibility'], unique=False)
    op.create_table('data_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('storage_key', sa.String(length=64), nullable=False),
    sa.Column('format', sa.String(length=32), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('pixel_size_nm', sa.Float(), nullable=True),
    sa.Column('n_locs', sa.Integer(), nullable=False),
    sa.Column('n_dropped', sa.Integer(), nullable=False),
    sa.Column('density', sa.Float(), nullable=True),
    sa.Column('coverage', sa.Float(), nullable=True),
    sa.Column('precision_median', sa.Float(), nullable=True),
    sa.Column('roi_source', sa.String(length=16), nullable=False),
    sa.Column('stats_json', sa.Text(), nullable=False),
    sa.Column('warnings_json', sa.Text(), nullable=False),
    sa.Column('fingerprints', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('storage_key')
    )
    op.create_index(op.f('ix_data_files_dataset_id'), 'data_files', ['dataset_id'], unique=False)
    op.create_table('dataset_shares',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'user_id')
    )
    op.create_index(op.f('ix_dataset_shares_dataset_id'), 'dataset_shares', ['dataset_id'], unique=False)
    op.create_index(op.f('ix_dataset_shares_user_id'), 'dataset_shares', ['user_id'], unique=False)
    op.create_table('rois',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('unit', sa.String(length=8), nullable=False),
    sa.Column('area_um2', sa.Float(), nullable=False),
    sa.Column('vertices_json', sa.Text(), nullable=False),
    sa.Column('has_original', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['file_id'], ['data_files.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_rois_file_id'), 'rois', ['file_id'], unique=False)
    op.create_table('tiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('x0_nm', sa.Float(), nullable=False),
    sa.Column('y0_nm', sa.Float(), nullable=False),
    sa.Column('roi_index', sa.Integer(), nullable=False),
    sa.Column('n_locs', sa.Integer(), nullable=False),
    sa.Column('kept', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['file_id'], ['data_files.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_tiles_file_id'), 'tiles', ['file_id'], unique=False)


def downgrade() -> None:
    for table in ("tiles", "rois", "data_files", "dataset_shares", "datasets", "api_tokens", "users", "bank_state"):
        op.drop_table(table)
