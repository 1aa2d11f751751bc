"""The 2D-to-3D lifter network and its training."""
