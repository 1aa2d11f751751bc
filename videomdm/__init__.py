"""VideoMDM: 3D human motion learned from ordinary video."""

__version__ = "0.1.0"
