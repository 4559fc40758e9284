"""What runs on Ray nodes: the Tune trainable (``workers.trainable``) and the built-in torch workloads
(``workers.workloads``). Imports ``schedulers`` for the problem description, never ``service`` or ``api``."""
