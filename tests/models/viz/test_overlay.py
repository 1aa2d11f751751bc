"""Keypoint overlays: people drawn on a frame, frames tiled into a contact sheet."""

from __future__ import annotations

import numpy as np

from videomdm.models.viz.overlay import contact_sheet, draw_people


def test_render_and_contact_sheet() -> None:
    frame = np.zeros((120, 160, 3), np.uint8)
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, :, 0], kp[0, :, 1], kp[0, :, 2] = np.linspace(20, 140, 17), 60, 1.0
    out = draw_people(frame, np.array([[10, 10, 150, 110]]), kp, np.array([7]))
    assert out.shape == frame.shape and out.any() and not frame.any()
    sheet = contact_sheet([out, frame, out], cols=2, tile_width=80)
    assert sheet.shape == (2 * 60, 160, 3)
