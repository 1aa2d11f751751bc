"""Pictures: keypoint overlays, skeleton animations, plots."""
