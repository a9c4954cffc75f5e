"""The composition root: the app, the CLI and the tests all build their services here."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.engine import make_engine, make_session_factory
from studio.db.migrate import upgrade
from studio.services.audit import AuditService
from studio.services.brand_loras import BrandLoraService
from studio.services.brands import BrandService
from studio.services.credentials import CredentialsService
from studio.services.credentials import ensure_at_start as ensure_content_credentials
from studio.services.datasets import DatasetService
from studio.services.doctor import DoctorService
from studio.services.editing import EditingService
from studio.services.file_access import FileAccessService
from studio.services.gallery import GalleryService
from studio.services.generation import EngineProvider, GenerationService
from studio.services.review import ReviewService
from studio.services.templates import TemplateService
from studio.services.training import TrainingService
from studio.services.users import UserService
from studio.services.workers import WorkerService


@dataclass(frozen=True)
class Services:
    """Every service, built once and shared (handed to the UI, the CLI and tests)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    users: UserService
    brands: BrandService
    loras: BrandLoraService
    audit: AuditService
    credentials: CredentialsService
    engines: EngineProvider
    generation: GenerationService
    editing: EditingService
    templates: TemplateService
    datasets: DatasetService
    training: TrainingService
    gallery: GalleryService
    review: ReviewService
    doctor: DoctorService
    files: FileAccessService
    workers: WorkerService

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()


def ensure_folders(settings: Settings) -> None:
    """Create the data folders under STUDIO_HOME."""
    for folder in (
        settings.home,
        settings.images_dir,
        settings.loras_dir,
        settings.datasets_dir,
        settings.templates_dir,
        settings.backups_dir,
    ):
        folder.mkdir(parents=True, exist_ok=True)


def build_services(
    settings: Settings | None = None,
    *,
    migrate: bool = True,
    password_hasher: PasswordHasher | None = None,
) -> Services:
    """Make the data folders, migrate the database (backing up a SQLite file first) and build services.

    The database schema only comes from migrations: nothing here calls ``create_all``.
    ``password_hasher`` overrides argon2's default cost (tests use a cheap profile).
    """
    settings = settings or Settings.from_env()
    ensure_folders(settings)
    ensure_content_credentials(settings)  # made on the first start; a missing or bad key stops the start
    if migrate:
        upgrade(settings)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    engines = EngineProvider(settings)  # the diffusion engine is built on first use
    brands = BrandService(sessions, settings, engines)
    gallery = GalleryService(sessions, settings)
    editing = EditingService(sessions, settings, engines)
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        users=UserService(sessions, settings, password_hasher),
        brands=brands,
        loras=BrandLoraService(sessions, settings, brands),
        audit=AuditService(sessions),
        credentials=CredentialsService(sessions, settings),
        engines=engines,
        generation=GenerationService(sessions, settings, engines, edits=editing),
        editing=editing,
        templates=TemplateService(sessions, settings, engines),
        datasets=DatasetService(sessions, settings),
        training=TrainingService(sessions, settings, brands),
        gallery=gallery,
        review=ReviewService(sessions, settings, gallery),
        doctor=DoctorService(sessions, settings),
        files=FileAccessService(sessions, settings),
        workers=WorkerService(sessions),
    )
