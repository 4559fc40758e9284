"""HTTP routers, one module per resource: ``studies``, ``trials``, ``health`` (and ``scaling``, when present)."""
