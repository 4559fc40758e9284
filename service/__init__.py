"""The ScaleLadder control plane: FastAPI app, persistence, orchestration and the ``scaleladder`` CLI.

Build the app with :func:`service.app.create_app`; nothing (engine, settings) is created at import time.
"""
