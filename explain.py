"""`python explain.py ...`: the explain binary (apps/explain.py)."""

from apps import explain

if __name__ == "__main__":
    explain.run()
