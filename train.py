"""`python train.py ...`: the train binary (apps/train.py, `mse-train`)."""

from apps import train

if __name__ == "__main__":
    train.run()
