"""Raw log lines to templates: generic masks (masking.py) and an online Drain-family miner (miner.py)."""
