"""The search space (`space`: tuned parameters, branches, given points) and the searchers that sample it.

Both sit below the spec: `raysweep.spec` parses `params:` into `Param`s and checks a spec
against its searcher's rules; the sweep asks the searcher's builder for Tune's objects.
"""

from raysweep.search.schedulers import SCHEDULERS
from raysweep.search.searchers import SEARCHERS, Request, Searcher, SearchPlan
from raysweep.search.space import Param

__all__ = ["SCHEDULERS", "SEARCHERS", "Param", "Request", "SearchPlan", "Searcher"]
