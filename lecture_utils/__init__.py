"""Helpers for the lecture "Parameter initialization: vanishing and exploding gradients".

One module per idea, imported in one direction only (a module imports only those above it):

    config                      environment variables, device, seeding, quick mode, banner, threads
    atomic                      files written whole or not at all (no torch: tools use it too)
    init                        THE vocabulary of activations and initializations; fans, gains, init functions
    numerics, theory            float limits and long products; the variance recurrences
    montecarlo                  Monte Carlo checks of the variance identities, measured gains
    models                      every network: deep MLP/CNN, plain ladder nets, seed model, residual blocks
    probes                      every hook: per-layer statistics, divergence diagnosis, training-time recorders
    synthetic, data             the offline generator; CIFAR-10 read safely, statistics, the in-memory path
    checkpoints, train          atomic checkpoints; ONE training loop (fit) and ONE evaluate -> (loss, acc)
    figures, explorer, bench    every plot; the slider explorer; timings

Each helper's docstring names the formula it implements, its source and the notebook that teaches it.
Notebooks import from here; nothing here imports a notebook.
"""

__version__ = "0.2.0"
__all__ = ["atomic", "bench", "checkpoints", "config", "data", "explorer", "figures", "init", "models", "montecarlo",
           "numerics", "probes", "synthetic", "theory", "train"]  # fmt: skip
