"""fusion_center0: combine the two detectors of part 0.

Jupiter legacy task with NUM_INPUTS 2: ``inputs`` is the list of both files,
``<n>anomalies_simple0.log`` and ``<n>anomalies_astute0.log`` (any order). Sources
flagged by both detectors are ``confirmed``, by only one ``suspected``. Output:
``<n>fused_anomalies0.log``, read by global_fusion. The logic is ``dnad.fusion_center``,
shared by the three parts.
"""

from dnad import fusion_center, main


def task(inputs, pathin, pathout):
    return fusion_center(0, inputs, pathin, pathout)


if __name__ == "__main__":
    main(task, many=True)
