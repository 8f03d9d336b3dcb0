"""Stand-ins for the two modules that other tools' problem folders import, so those folders run under
evolve unchanged: ``openevolve.evaluation_result.EvaluationResult`` and ``shinka.core.run_shinka_eval``.

This folder goes on ``sys.path`` only inside a sandbox child evaluating such a folder (see
evolve.compat.openevolve and evolve.compat.shinka); the engine itself never imports them, and
installing the real packages is not needed.
"""
