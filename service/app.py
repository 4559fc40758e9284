"""The FastAPI application factory. ``create_app(settings)`` builds everything; importing builds nothing."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from service import ui
from service.db import make_engine, make_session_factory, transaction
from service.errors import install_error_handlers
from service.executors import make_executor
from service.limits import BodySizeLimit
from service.metrics import MetricsMiddleware, ServiceMetrics
from service.migrate import upgrade
from service.repositories import TokenRepository
from service.routes import health, scaling, studies, trials
from service.scaling import ScalingFits
from service.scheduling import SchedulerCache
from service.settings import Settings

API_VERSION = "0.1.0"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service app for ``settings`` (default: read from the environment)."""
    settings = settings or Settings()
    engine = make_engine(settings)
    if settings.should_migrate_on_startup:
        upgrade(engine)
    session_factory = make_session_factory(engine)
    if settings.bootstrap_token is not None:
        with transaction(session_factory) as session:
            TokenRepository(session).ensure(settings.bootstrap_token.get_secret_value(), settings.bootstrap_tenant,
                                            name="bootstrap")
    executor = make_executor(settings)
    metrics = ServiceMetrics(session_factory)
    scaling_fits = ScalingFits(settings.scaling_fit_processes, settings.scaling_fit_cache_size,
                               on_fit=metrics.count_scaling_fit, running=metrics.scaling_fits_running)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        scaling_fits.close()
        executor.close()
        engine.dispose()

    app = FastAPIOffline(  # Swagger UI and ReDoc assets served by the app itself, no CDN
        title="ScaleLadder",
        version=API_VERSION,
        summary="Multi-fidelity, multi-scale hyperparameter tuning: studies, trials, ask/tell.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.executor = executor
    app.state.scheduler_cache = SchedulerCache(settings.scheduler_cache_size)
    app.state.scaling_fits = scaling_fits
    app.state.metrics = metrics

    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # outermost: counts the 413s too
    app.include_router(health.router)
    app.include_router(studies.router)
    app.include_router(trials.router)
    app.include_router(scaling.router)
    ui.install(app)
    return app
