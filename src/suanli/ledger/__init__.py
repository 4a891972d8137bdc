"""The provenance ledger's parts: the RFC 6962 / 9162 Merkle tree and its proofs (merkle.py), and signed
notes and checkpoints in the C2SP formats (note.py). The log itself is stored by store/ledger.py."""
