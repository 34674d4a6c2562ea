"""RoboAct-CLIP heads (trainable) and the encoder that pairs them with a frozen backbone."""
from roboact.models.config import RoboActConfig
from roboact.models.roboact_clip import RoboActCLIP, RoboActOutput

__all__ = ["RoboActCLIP", "RoboActConfig", "RoboActOutput"]
