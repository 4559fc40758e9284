"""ScaleLadder's wire contract (pydantic v2 schemas) and Python client SDK.

Importable with only pydantic, httpx, pyyaml, typer and rich installed: no torch, no ray, no numpy.

    from api import Client
    client = Client("http://127.0.0.1:8000", token="sl_...")
    study = client.create_study("examples/random_small.yaml")
    while (trial := study.ask()) is not None:
        for step in trial.report_steps():
            if trial.report(step, train(trial.params, trial.size, step)) is not Decision.CONTINUE:
                break
        trial.complete()
    print(study.best())
"""

from api.client import Client, StudyHandle, TrialHandle
from api.errors import (AuthenticationError, ConflictError, InvalidArgumentError, NotFoundError, ScaleLadderError,
                        ServerError, TransportError, UnavailableError)
from api.schemas import Decision, Direction, StudySpec, StudyState, TrialState

__all__ = [
    "AuthenticationError", "Client", "ConflictError", "Decision", "Direction", "InvalidArgumentError",
    "NotFoundError", "ScaleLadderError", "ServerError", "StudyHandle", "StudySpec", "StudyState", "TransportError",
    "TrialHandle", "TrialState", "UnavailableError",
]
