"""Reviews: every review transition of an image (approve, reject, reopen), and two gallery indexes on images
(brand + palette flag + newest first; brand by palette score).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 12:55:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("decision IN ('approve', 'reject', 'reopen')", name=op.f("ck_reviews_decision")),
        sa.CheckConstraint(
            "from_status IN ('pending', 'approved', 'rejected')", name=op.f("ck_reviews_from_status")
        ),
        sa.CheckConstraint(
            "to_status IN ('pending', 'approved', 'rejected')", name=op.f("ck_reviews_to_status")
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_reviews_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["reviewer_id"], ["users.id"], name=op.f("fk_reviews_reviewer_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    op.create_index("ix_reviews_image_created", "reviews", ["image_id", "created_at"], unique=False)
    op.create_index("ix_reviews_reviewer_created", "reviews", ["reviewer_id", "created_at"], unique=False)
    # Plain CREATE INDEX on images (no batch rebuild of a table other tables reference).
    op.create_index(
        "ix_images_brand_flag_created", "images", ["brand_id", "palette_flag", "created_at"], unique=False
    )
    op.create_index("ix_images_brand_score", "images", ["brand_id", "palette_score"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_images_brand_score", table_name="images")
    op.drop_index("ix_images_brand_flag_created", table_name="images")
    op.drop_index("ix_reviews_reviewer_created", table_name="reviews")
    op.drop_index("ix_reviews_image_created", table_name="reviews")
    op.drop_table("reviews")
