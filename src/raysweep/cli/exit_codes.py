"""What each `raysweep` exit code means, for scripts and CI that run it.

    0    done: a sweep where at least one trial finished or was stopped by its scheduler
    1    the command ran but found nothing to give (a champion below --min-metric, no LR range,
         every io-search setting failed)
    2    a mistake in what was given (spec, data, storage, arguments): one message, no traceback
    3    every trial of the sweep failed; the summary groups them by cause
    130  interrupted (Ctrl-C); `raysweep resume` finishes the sweep
"""

OK = 0
NOTHING_FOUND = 1
USAGE = 2
ALL_TRIALS_FAILED = 3
INTERRUPTED = 130
