"""The canonical skeleton, cameras, clips, motion features, mocap loaders and rigs."""
