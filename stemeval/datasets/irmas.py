"""IRMAS, training part: ``IRMAS-TrainingData/<instrument>/<excerpt>.wav``.

Each 3 s excerpt has one predominant instrument, named by the folder holding it (``cel``,
``cla``, ``flu``, ``gac``, ``gel``, ``org``, ``pia``, ``sax``, ``tru``, ``vio``, ``voi``)
and again in the file name (``008__[cel][nod][cla]0058__1.wav``: instrument, drums or not,
genre). The excerpts of one recording share its name up to the final ``__<n>``: that is
the group. The testing part (several instruments per excerpt) is not a stem dataset.
"""

import os
import re

from stemeval.datasets.walker import Dataset, Found, Stem, audio_files, part_from_end, path_parts

_EXCERPT_NUMBER = re.compile(r"__\d+$")


def recording(parts):
    """The group: the file name up to its final ``__<n>``."""
    return _EXCERPT_NUMBER.sub("", os.path.splitext(part_from_end(parts, 1))[0])


def walk(folder, follow_links=False):
    files, skipped, notes = audio_files(folder, (".wav",), follow_links)
    stems = []
    for directory, name in files:
        path = os.path.join(directory, name)
        stems.append(Stem(path, os.path.basename(os.path.normpath(directory)),
                          group=recording(path_parts(path))))
    return Found(stems, skipped, notes)


DATASET = Dataset(
    name="irmas", title="IRMAS (training data)", walk=walk, map_name="irmas",
    track_of=recording,
    folder="the IRMAS-TrainingData folder (<instrument code>/<excerpt>.wav)")
