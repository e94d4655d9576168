"""``hotelbot bench``: the bot's real workload, latency percentiles, pool stats, regressions.

- :mod:`workload`: the registry of operations and the drivers that run them;
- :mod:`runner`: threads or asyncio tasks through the pooled engine, phases, progress;
- :mod:`stats`, :mod:`explain`, :mod:`reference`: percentiles, index check, pgbench;
- :mod:`report`, :mod:`report_json`: the report and its versioned JSON;
- :mod:`comparison`, :mod:`thresholds`, :mod:`verdict`: against a baseline, ``--fail-if``.
"""
