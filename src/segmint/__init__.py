"""segmint: self-hosted CRM segmentation and targeting."""

__version__ = "0.1.0"
