"""Side-by-side benchmarks of plabdata and the official ``pluginlab_admin`` client.

Run ``python -m benchmarks`` (full) or ``python -m benchmarks --quick`` (CI smoke run).
"""
