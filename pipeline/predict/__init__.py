"""Prediction for new, unlabelled posts with a finished run: stage one as the run's cache was made, then its model."""
from pipeline.lazy import exports

__all__ = ["PredictConfig", "PredictSummary", "TrainedRun", "load_trained_run", "predict"]
__getattr__ = exports(__name__, {
    "PredictConfig": "pipeline.predict.config", "PredictSummary": "pipeline.predict.run",
    "predict": "pipeline.predict.run", "TrainedRun": "pipeline.predict.trained",
    "load_trained_run": "pipeline.predict.trained",
})
