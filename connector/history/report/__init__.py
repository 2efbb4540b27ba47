"""Run-history report: pure pandas transforms over the frames of the history loaders.

What counts as published, failed, held, retried and latency is defined in docs/history.md; the
counting happens in SQL (``connector.history.attempts``) so a year of attempts never reaches pandas
row by row. Each transform takes DataFrames and returns a new one: ``units`` (how a measure is
shown), ``outcomes``, ``periods`` (the time axis and trends), ``failures``, ``latency`` and
``operations``; ``build.build_report`` wires loaders and transforms together for one window.
"""
