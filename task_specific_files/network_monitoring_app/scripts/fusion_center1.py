"""fusion_center1: combine the two detectors of part 1.

Jupiter legacy task with NUM_INPUTS 2: ``inputs`` is the list of both files,
``<n>anomalies_simple1.log`` and ``<n>anomalies_astute1.log`` (any order). Sources
flagged by both detectors are ``confirmed``, by only one ``suspected``. Output:
``<n>fused_anomalies1.log``, read by global_fusion. The logic is ``dnad.fusion_center``,
shared by the three parts.
"""

from dnad import fusion_center, main


def task(inputs, pathin, pathout):
    return fusion_center(1, inputs, pathin, pathout)


if __name__ == "__main__":
    main(task, many=True)
