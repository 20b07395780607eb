"""`python predict.py ...`: the predict binary (apps/predict.py)."""

from apps import predict

if __name__ == "__main__":
    predict.run()
