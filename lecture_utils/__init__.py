"""Helpers for the lecture "Parameter initialization: vanishing and exploding gradients".

One module per idea (see the README): ``config`` (device, seeding, quick mode), ``numerics``,
``init``, ``theory``, ``models``, ``probes``, ``data``, ``train``, ``plots``, ``bench``.
Notebooks import from here; nothing here imports a notebook.
"""

__version__ = "0.1.0"
