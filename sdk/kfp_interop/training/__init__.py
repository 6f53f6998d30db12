"""Training: tabular estimators (:mod:`.tabular`), networks (:mod:`.deep`), metrics and
hyperparameter parsing shared by both."""

from kfp_interop.training.deep import fit_network
from kfp_interop.training.hyperparameters import parse_hyperparameters
from kfp_interop.training.metrics import compute_metrics, roc_points, score
from kfp_interop.training.tabular import TrainResult, train_model

__all__ = ["TrainResult", "train_model", "fit_network",
           "parse_hyperparameters", "compute_metrics", "score", "roc_points"]
