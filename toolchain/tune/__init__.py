"""Hyperparameter tuning: the PASHA core (`pasha`, pure Python), a curve-replay driver (`simulate`) and the Ray
Tune adapter (`ray_scheduler`, which alone imports Ray)."""
