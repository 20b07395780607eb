"""Installs the `common`, `models`, `preprocessing`, `tasks` and `apps`
packages of the toolkit."""

import setuptools

setuptools.setup(
    name="multimodal-speech-emotion",
    version="0.1.0",
    description=("TF2/Keras multimodal (speech + text) emotion recognition: "
                 "a faithful port of Yoon et al. (SLT 2018) and more."),
    packages=setuptools.find_packages(include=["common", "common.*",
                                               "models", "models.*",
                                               "preprocessing",
                                               "preprocessing.*",
                                               "tasks", "tasks.*",
                                               "apps", "apps.*"]),
    # The original's openSMILE configs, for the optional openSMILE features.
    package_data={"preprocessing": ["opensmile_configs/*.conf"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "tensorflow-hub>=0.16",
        "keras>=3.3",
        "librosa>=0.10",
        "nltk>=3.8",
        "scikit-learn>=1.3",
        "numpy>=1.26",
        "absl-py>=1.4",
        # Plots (confusion matrix); librosa already pulls it in indirectly.
        "matplotlib>=3.7",
        "tensorboard>=2.16",
        # Speech recognition for ASR-transcript folds and for predicting a
        # text model from a wav alone: ships an English model (~38 MB,
        # nothing next to TensorFlow) and decodes offline, so the default
        # install transcribes without any download.
        "pocketsphinx>=5.0,<6",
        # WER/CER and word alignments of ASR against gold text (a
        # maintained library, not a hand-written edit distance).
        "jiwer>=3.0",
        # The training progress bar (models/training.py).
        "tqdm>=4.60",
    ],
    extras_require={
        # pytest-xdist: the suite runs on both cores (-n 2); most of its
        # time is single-threaded tracing and subprocess start-up.
        "test": ["pytest>=7", "pytest-xdist>=3.5", "optuna>=3.4"],
        # Hyperparameter search (search.py, tasks/search.py).
        "search": ["optuna>=3.4"],
        # Exact openSMILE features as in the original (optional).
        "opensmile": ["opensmile>=2.5"],
    },
)
