"""`python protocol.py ...`: the protocol binary (apps/protocol.py)."""

from apps import protocol

if __name__ == "__main__":
    protocol.run()
