"""The built-in demo: generated posts -> extract -> fit -> report -> predict, offline, in a few CPU minutes."""
from pipeline.demo.run import DemoConfig, choose_encoder, demo
from pipeline.demo.sample import write_sample
from pipeline.demo.summary import DemoSummary

__all__ = ["DemoConfig", "DemoSummary", "choose_encoder", "demo", "write_sample"]
