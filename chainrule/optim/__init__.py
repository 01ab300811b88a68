"""Optimizers (SGD, Adam), learning-rate schedules and gradient clipping."""
from chainrule.optim.adam import Adam
from chainrule.optim.clip import clip_grad_norm_, clip_grad_value_
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.schedules import CosineAnnealingLR, ExponentialLR, LRScheduler, StepLR
from chainrule.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR",
           "clip_grad_norm_", "clip_grad_value_"]
