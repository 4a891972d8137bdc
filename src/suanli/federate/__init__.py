"""Federated learning and cross-owner model fusion: robust aggregation of client updates (`aggregate`) and
the attacks that test it (`attacks`). Imported only by the processes that aggregate; needs torch."""
