"""Views: the table view's square, its manifest form, and the command line that shapes it."""

import argparse

import numpy as np
import pytest

from edgeagent.errors import ConfigError
from edgeagent.models.train import view_arg
from edgeagent.models.view import View


@pytest.mark.parametrize("view", [View("table"), View("table", half_extent_m=0.4, centre_m=(0.0, 0.06)),
                                  View("table", half_extent_m=0.3, plane_z_m=0.0, centre_m=(-0.1, 0.05))])
def test_the_table_views_square_fills_the_image(view):
    e, (cx, cy), z = view.half_extent_m, view.centre_m, view.plane_z_m
    cam = view.image_camera(96)
    # Top left of the image is the square's far left corner, bottom right its near right one.
    uv = cam.table_to_pixel([(cx - e, cy + e), (cx + e, cy - e), (cx, cy)], z=z)
    assert np.allclose(uv, [(0, 0), (96, 96), (48, 48)], atol=1e-6)
    assert View.from_dict(view.to_dict()) == view


@pytest.mark.parametrize("d, message", [
    ({"kind": "table", "centre_m": [0.1]}, "centre_m must be"),
    ({"kind": "table", "centre_m": [0.0, 3.0]}, "must be two numbers in"),
    ({"kind": "table", "half_extent_m": 0.01}, "half_extent_m 0.01 must be in"),
    ("table", "view must be an object"),
])
def test_bad_views_are_refused_naming_the_key(d, message):
    with pytest.raises(ValueError, match=message):
        View.from_dict(d)


def _args(view=None, extent=None, centre=None):
    return argparse.Namespace(view=view, view_extent=extent, view_centre=centre)


def test_the_command_line_shapes_the_table_view_and_refuses_what_does_not_fit():
    assert view_arg(_args()) is None and view_arg(_args("camera")) == "camera"
    assert view_arg(_args("table", 0.4, "0,0.06")) == View("table", half_extent_m=0.4, centre_m=(0.0, 0.06))
    with pytest.raises(ConfigError, match="add --view table"):
        view_arg(_args(None, 0.4))
    with pytest.raises(ConfigError, match="give X,Y in metres"):
        view_arg(_args("table", None, "north"))
    with pytest.raises(ConfigError, match="half_extent_m 9.0 must be in"):
        view_arg(_args("table", 9.0))
