"""Video decoding and probing, person detection, 2D pose, tracking, weights."""
