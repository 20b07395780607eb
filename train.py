"""Trains one model on a fold folder: see apps/train.py (`mse-train`).

    python train.py --model=MDREA --data_dir=demo_data/demo_set01
"""

import os

if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from apps import train

    train.run()
