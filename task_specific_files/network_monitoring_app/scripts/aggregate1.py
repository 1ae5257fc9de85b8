"""aggregate1: per-source summary of part 1 of a capture.

Jupiter legacy task. Input: ``<n>split_1.ipsum`` (packets of part 1 from local_pro).
Output: ``<n>merged_file1.ipsum``, one line per source address (packets, bytes, distinct
destinations, ports and flows, first and last timestamp), read by both detectors of this
part. The logic is ``dnad.aggregate``, shared by the three parts.
"""

from dnad import aggregate, main


def task(inputs, pathin, pathout):
    return aggregate(1, inputs, pathin, pathout)


if __name__ == "__main__":
    main(task)
