"""The bottom layer: what rules, collectors and the engine share.

Errors (:mod:`core.errors`), the typed registry (:mod:`core.registry`), the service as the
catalog describes it (:mod:`core.service`) and fact schemas (:mod:`core.schema`). It imports
nothing of Levelset's own, so every other package may import it and it never imports them.
"""
