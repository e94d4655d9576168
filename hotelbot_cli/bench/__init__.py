"""``hotelbot bench``: the bot's real workload, latency percentiles, pool stats, regressions.

- :mod:`workload`, :mod:`queries`: the registry of operations and their SQL;
- :mod:`driver`: runs one operation on a psycopg connection, one round trip per batch;
- :mod:`options`: what to run; :mod:`runner`: the engines, logins and phases in order;
- :mod:`survey`, :mod:`targets`: what bench reads from the database, whom it runs on;
- :mod:`measured`, :mod:`workers`, :mod:`processes`, :mod:`counters`: the measured phase;
- :mod:`isolation`, :mod:`explain`, :mod:`reference`, :mod:`login`: the other phases;
- :mod:`report`, :mod:`report_json`, :mod:`stats`: the report, its versioned JSON, percentiles;
- :mod:`comparison`, :mod:`thresholds`, :mod:`verdict`: against a baseline, ``--fail-if``.
"""
