"""astute_detector2: flag sources of part 2 whose fan-out is an outlier (scanners, bots).

Jupiter legacy task. Input: ``<n>merged_file2.ipsum`` (per-source summary from
aggregate2). A source is anomalous when its fan-out (distinct destination/port pairs) is
at least 8 and its modified z-score exceeds 3.5. Output: ``<n>anomalies_astute2.log``,
read by fusion_center2. The logic is ``dnad.astute_detector``, shared by the three parts.
"""

from dnad import astute_detect as detect  # noqa: F401 (re-exported: tests call <script>.detect)
from dnad import astute_detector, main


def task(inputs, pathin, pathout):
    return astute_detector(2, inputs, pathin, pathout)


if __name__ == "__main__":
    main(task)
