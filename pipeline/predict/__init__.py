"""Prediction for new, unlabelled posts with a finished run: stage one as the run's cache was made, then its head."""
from pipeline.predict.config import PredictConfig
from pipeline.predict.run import PredictSummary, predict
from pipeline.predict.trained import TrainedRun, load_trained_run

__all__ = ["PredictConfig", "PredictSummary", "TrainedRun", "load_trained_run", "predict"]
