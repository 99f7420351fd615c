"""prefrl: reinforcement learning from human preferences for Gymnasium agents."""

import os

# MuJoCo renders through GLFW by default, which needs a display; headless machines use EGL.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"

__version__ = "0.1.0"
