"""Training and evaluation of zoo models with early exits.

- `loop.train(recipe, dataset)`: config in, per-epoch metrics out; saves the model and metrics.json.
- `callbacks`: T-RecX early-view assistance, SDN's loss-weight ramp, the learning-rate schedule.
- `evaluate`: the exit-threshold sweep with exact per-path MACs, its table and plot.
- `metrics`: accuracy and AUC.

Importing this package is cheap; TensorFlow loads when a function that needs it runs.
"""
