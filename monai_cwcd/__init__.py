"""monai-cwcd: contour-weighted segmentation for MONAI.

Subpackages follow MONAI's layout: ``transforms`` (contour and weight maps), ``losses`` (CWCD and
its parts, baselines), ``networks`` (PDANet), ``data`` (dataset loaders and the synthetic
generator), ``handlers`` (ignite handlers the bundles use).
"""

from __future__ import annotations

from monai_cwcd import errors  # stdlib-only at import: the bundles' initialize calls monai_cwcd.errors

__version__ = "0.2.0"

__all__ = ["__version__", "errors"]
