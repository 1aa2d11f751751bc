"""Pose metrics, the lifter and VideoMDM protocols, generation metrics."""
