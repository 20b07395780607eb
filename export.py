"""`python export.py ...`: the export binary (apps/export.py)."""

from apps import export

if __name__ == "__main__":
    export.run()
