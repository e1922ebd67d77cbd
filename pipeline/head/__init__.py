"""The SG-MFT fusion head (paper §3) and its variants; imports only torch."""
from pipeline.head.model import HeadConfig, SGMFTHead
from pipeline.head.variants import VARIANTS, variant_config

__all__ = ["HeadConfig", "SGMFTHead", "VARIANTS", "variant_config"]
