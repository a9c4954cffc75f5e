"""Database layer: typed models, engine/session factory, repositories and migrations."""
