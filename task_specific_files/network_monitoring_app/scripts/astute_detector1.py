"""astute_detector1: flag sources of part 1 whose fan-out is an outlier (scanners, bots).

Jupiter legacy task. Input: ``<n>merged_file1.ipsum`` (per-source summary from
aggregate1). A source is anomalous when its fan-out (distinct destination/port pairs) is
at least 8 and its modified z-score exceeds 3.5. Output: ``<n>anomalies_astute1.log``,
read by fusion_center1. The logic is ``dnad.astute_detector``, shared by the three parts.
"""

from dnad import astute_detect as detect  # noqa: F401 (re-exported: tests call <script>.detect)
from dnad import astute_detector, main


def task(inputs, pathin, pathout):
    return astute_detector(1, inputs, pathin, pathout)


if __name__ == "__main__":
    main(task)
