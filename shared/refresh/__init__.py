"""Image refresh: a team's existing pool moved to a new image, without a new pool, and its old image retired safely.

:mod:`.admission` checks a refresh at intake (the pool is the team's, the new image fits it, no other refresh holds it);
the pipeline publishes the new version as for a new pool; :mod:`.mover` then moves the pool (Pool - Update of its
image while it is Steady at zero nodes: reached on its own, or by a drain), restores its target and releases and retires
what the pool no longer uses. :mod:`.fit` holds the rules a new image must meet, :mod:`.state` what a refresh remembers.
"""
