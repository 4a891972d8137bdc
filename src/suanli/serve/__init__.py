"""Voting inference: `suanli serve ensemble.yaml` runs model replicas on different owners' nodes and a
front that answers each request by their vote (docs/serving.md).

    spec.py      the ensemble file, validated once (no torch, no FastAPI)
    vote.py      the majority and soft votes and the drop rule, pure functions
    models.py    loading a replica's model (ONNX, TorchScript, file.py:factory) and the load check
    replica.py   one replica's HTTP process (a job pinned to its node)
    front.py     the front's HTTP process: fan out, vote, drop and flag, report latency and throughput
    driver.py    check everything, submit the jobs, wait until the front answers; stop a service
"""
