"""The SG-MFT fusion head (paper §3) and its variants; imports only torch."""
from pipeline.lazy import exports

__all__ = ["INPUT_NORMS", "HeadConfig", "SGMFTHead", "VARIANTS", "measure_guidance", "variant_config"]
__getattr__ = exports(__name__, {
    "INPUT_NORMS": "pipeline.head.config", "HeadConfig": "pipeline.head.config", "SGMFTHead": "pipeline.head.model",
    "VARIANTS": "pipeline.head.variants", "measure_guidance": "pipeline.head.diagnostics",
    "variant_config": "pipeline.head.variants",
})
