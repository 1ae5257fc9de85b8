"""simple_detector0: flag sources of part 0 that send far more packets than the others.

Jupiter legacy task. Input: ``<n>merged_file0.ipsum`` (per-source summary from
aggregate0). A source is anomalous when its packet count exceeds ``mean + 2 * std`` of
the sources of this part. Output: ``<n>anomalies_simple0.log``, read by fusion_center0.
The logic is ``dnad.simple_detector``, shared by the three parts.
"""

from dnad import main, simple_detector
from dnad import simple_detect as detect  # noqa: F401 (re-exported: tests call <script>.detect)


def task(inputs, pathin, pathout):
    return simple_detector(0, inputs, pathin, pathout)


if __name__ == "__main__":
    main(task)
