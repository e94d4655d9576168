"""``hotelbot bench``: the bot's real workload, latency percentiles, pool stats, regressions.

- :mod:`workload`: the registry of operations and the drivers that run them;
- :mod:`options`: what to run; :mod:`runner`: the engines, logins and phases in order;
- :mod:`survey`: what bench reads from the database before it runs;
- :mod:`measured`, :mod:`workers`, :mod:`processes`, :mod:`counters`: the measured phase;
- :mod:`isolation`, :mod:`explain`, :mod:`reference`, :mod:`login`: the other phases;
- :mod:`stats`: latency percentiles;
- :mod:`report`, :mod:`report_json`: the report and its versioned JSON;
- :mod:`comparison`, :mod:`thresholds`, :mod:`verdict`: against a baseline, ``--fail-if``.
"""
