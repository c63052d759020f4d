"""The results layer: what a finished task gave back, and the pictures made from it."""

from .result import Result
from .segmentation import SegmentationResult, set_overlay_drawer

__all__ = ["Result", "SegmentationResult", "set_overlay_drawer"]
