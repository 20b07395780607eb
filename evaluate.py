"""`python evaluate.py ...`: the evaluate binary (apps/evaluate.py)."""

from apps import evaluate

if __name__ == "__main__":
    evaluate.run()
