"""gait: joint moments and ground reaction forces from kinematics."""

__version__ = "0.1.0"
