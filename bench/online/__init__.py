"""Online data mixing on the real workload (issue 17): ``python -m bench.online``; see :mod:`bench.online.run`."""
