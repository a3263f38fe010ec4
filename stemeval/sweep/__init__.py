"""Robustness sweeps: datasets x taggers x conditions from one TOML config (``sweep.py``).

``config`` reads and checks the config; ``work`` evaluates one shard of stems through every
cell; ``runner`` keeps the cell files and runs shards locally; ``ray_runner`` runs the same
shards as Ray tasks; ``summary`` writes the summary table and the plot.
"""
