"""App-side reader of the published surfaces (no Spark, no JVM): see :mod:`recsys.reader.reader`.

Example::

    from recsys.reader import Reader

    reader = Reader("./warehouse", experiments=load_config("experiments.yaml"))
    reader.recommendations_for(42, n=10).item_ids
"""

from recsys.reader.reader import REC_SETS, Reader, rec_set_of
from recsys.reader.results import ServedItem, ServedList
from recsys.reader.sinks import DeltaServedSink, InMemorySink, ServedEvent, ServedSink

__all__ = [
    "REC_SETS",
    "DeltaServedSink",
    "InMemorySink",
    "Reader",
    "ServedEvent",
    "ServedItem",
    "ServedList",
    "ServedSink",
    "rec_set_of",
]
