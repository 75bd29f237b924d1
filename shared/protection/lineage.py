"""Image lineage, read from ARM: does a resource exist, and what was it made from.

A pool's image is a gallery image version or a managed image; a version is
made from a managed image (``storageProfile.source.id``) or straight from
snapshots (``osDiskImage`` / ``dataDiskImages[].source.id``, how Trusted Launch
images are published), a managed image from snapshots
(``storageProfile.osDisk/dataDisks[].snapshot.id``). Every part of
that chain must outlive the pool (Batch docs: deleting it makes resizes fail
with ``AllocationFailed``). One :class:`LineageReader` serves one invocation (an
intake, a sweep, an alert): each resource is read at most once, and ids are
compared in one normal form (:func:`shared.arm.ids.resource_key`).

A sweep asks for the whole fleet at once (:meth:`LineageReader.prefetch`): one
Resource Graph query per page of ids, so its cost grows with the number of
pages, not of pools; what a recorded pool's image was made from comes from
its usage record (:meth:`LineageReader.remember`), not from ARM. An id Resource
Graph does not return is read once more directly before it counts as gone:
Resource Graph follows ARM by a little, and a missing answer must not become a
false critical alert about a resource just created.
"""

from __future__ import annotations

import threading

from ..arm.ids import GALLERY_IMAGE_VERSION, IMAGE, SNAPSHOT, ArmId, resource_key, try_parse
from ..arm.views import DELETING, ImageVersionView, ImageView, SnapshotView
from ..gateway.protocol import ComputeGateway, ResourceGraphGateway


def lineage_resource(resource_id: str) -> ArmId | None:
    """The parsed id when ``resource_id`` is a gallery image version, managed image or snapshot; None otherwise."""
    return try_parse(resource_id, GALLERY_IMAGE_VERSION) or try_parse(resource_id, IMAGE) or try_parse(resource_id, SNAPSHOT)


class LineageReader:
    """Existence and sources of lineage resources, each read once (thread-safe: a sweep checks accounts in parallel)."""

    def __init__(self, compute: ComputeGateway) -> None:
        self._compute = compute
        self._found: dict[str, tuple[bool, tuple[str, ...]]] = {}
        # Known to exist (Resource Graph said so) though not read: what it was made from is read only if asked.
        self._present: set[str] = set()
        # An image's lineage as recorded in its usage record: lineage() answers it without a read.
        self._lineages: dict[str, tuple[str, ...]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.graph_queries = 0

    def prefetch(self, resource_ids: list[str], graph: ResourceGraphGateway) -> None:
        """Learn which of ``resource_ids`` exist from Resource Graph, one query per page of ids (no point reads).

        Found ids count as existing from now on; an id not returned is left to a point read
        when asked (Resource Graph lags ARM a little: "not found" there is only a hint).
        """
        wanted: dict[str, ArmId] = {}
        for resource_id in resource_ids:
            parsed = lineage_resource(resource_id)
            if parsed is not None and parsed.key() not in self._found:
                wanted.setdefault(parsed.key(), parsed)
        if not wanted:
            return
        answer = graph.present(list(wanted.values()))
        with self._lock:
            self.graph_queries += answer.queries
            self._present |= answer.present

    def remember(self, image_id: str, lineage: tuple[str, ...]) -> None:
        """``image_id`` was made from ``lineage`` (as recorded when a pool using it was protected)."""
        with self._lock:
            self._lineages[resource_key(image_id)] = lineage

    def known_lineage(self, image_id: str) -> tuple[str, ...] | None:
        """The image's lineage when this reader already knows it and knows the image exists, without a read; else None."""
        remembered = self._lineages.get(resource_key(image_id))
        if remembered is not None:
            return remembered if resource_key(image_id) in self._present or self._found.get(resource_key(image_id), (False,))[0] else None
        with self._lock:
            found = dict(self._found)
        image = found.get(resource_key(image_id))
        if image is None or not image[0]:
            return None
        lineage: dict[str, str] = {}
        pending = list(image[1])
        while pending:
            source = pending.pop(0)
            parsed = lineage_resource(source)
            if resource_key(source) in lineage:
                continue
            lineage[resource_key(source)] = source
            if parsed is None or parsed.resource_type == SNAPSHOT:
                continue
            read = found.get(resource_key(source))
            if read is None:
                return None  # what it was made from was never read
            pending += read[1]
        return tuple(lineage.values())

    def seen_elsewhere(self, image_id: str, lineage: tuple[str, ...]) -> None:
        """``image_id`` exists and was made from ``lineage``, as another reader found moments ago (a sweep handing an
        adoption batch what it read): neither is read again; whether each of ``lineage`` still exists is."""
        with self._lock:
            self._present.add(resource_key(image_id))
            self._lineages[resource_key(image_id)] = lineage

    def exists(self, resource_id: str) -> bool:
        """Whether the resource exists (and is not being deleted). Ids of other types count as existing."""
        if resource_key(resource_id) in self._present:
            return True
        return self._read(resource_id)[0]

    def made_from(self, resource_id: str) -> tuple[str, ...]:
        """The resources ``resource_id`` was made directly from (empty for snapshots and unknown ids, read for nothing)."""
        parsed = lineage_resource(resource_id)
        if parsed is None or parsed.resource_type == SNAPSHOT:
            return ()
        return self._read(resource_id)[1]

    def lineage(self, image_id: str) -> list[str]:
        """Everything ``image_id`` was made from, recursively, nearest first, each once."""
        remembered = self._lineages.get(resource_key(image_id))
        if remembered is not None:
            return list(remembered)
        found: dict[str, str] = {}
        pending = list(self.made_from(image_id))
        while pending:
            source = pending.pop(0)
            if resource_key(source) not in found:
                found[resource_key(source)] = source
                pending += self.made_from(source)
        return list(found.values())

    def missing(self, image_id: str | None, *, deep: bool) -> list[str]:
        """Ids of the image (and, ``deep``, of its lineage) that are gone; the image alone when it is gone."""
        if not image_id:
            return []
        if not self.exists(image_id):
            return [image_id]
        if not deep:
            return []
        return [source for source in self.lineage(image_id) if not self.exists(source)]

    def _read(self, resource_id: str) -> tuple[bool, tuple[str, ...]]:
        key = resource_key(resource_id)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._found:
                self._found[key] = self._get(resource_id)
            return self._found[key]

    def _get(self, resource_id: str) -> tuple[bool, tuple[str, ...]]:
        parsed = lineage_resource(resource_id)
        if parsed is None:
            # Not an id we know how to read (a shared or community gallery image): assume it exists.
            return True, ()
        found: SnapshotView | ImageView | ImageVersionView | None
        if parsed.resource_type == GALLERY_IMAGE_VERSION:
            found = self._compute.image_version(parsed)
        elif parsed.resource_type == IMAGE:
            found = self._compute.image(parsed)
        else:
            found = self._compute.snapshot(parsed)
        if found is None or found.provisioning_state == DELETING:
            return False, ()
        # A version is made from a managed image, or straight from snapshots or disks; an image from snapshots.
        return True, found.sources if not isinstance(found, SnapshotView) else ()
