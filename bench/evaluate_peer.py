"""The whole Python reference process for `npm run bench -- evaluate`'s process comparison: the challenge's
metrics (fixtures/eval/make_metric_fixtures.py: numpy, scipy, scikit-image, nibabel) of every case in PRED_DIR
against GT_DIR, then the challenge's aggregates, written as JSON to OUT, as one run of the challenge's
evaluate.py would do it. Run with Debian's /usr/bin/python3:  evaluate_peer.py PRED_DIR GT_DIR OUT"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "eval"))
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from make_metric_fixtures import aggregate, evaluate_case  # noqa: E402


def main(pred_dir, gt_dir, out):
    results = {}
    for f in sorted(os.listdir(gt_dir)):
        if not f.endswith(".nii.gz"):
            continue
        gt = np.asanyarray(nib.load(os.path.join(gt_dir, f)).dataobj).transpose(2, 1, 0)
        pred = np.asanyarray(nib.load(os.path.join(pred_dir, f)).dataobj).transpose(2, 1, 0)
        results[f[:-7]] = evaluate_case(f, pred, gt)
    try:
        aggregates, _errors = aggregate(list(results.values()))
    except Exception as err:  # statistics.stdev needs two cases of each group, as in the challenge's evaluate.py
        aggregates = {"error": f"{type(err).__name__}: {err}"}
    cases = {k: [r.get("cldice", r.get("panoptic_quality")), r["dice"]] for k, r in results.items()}
    with open(out, "w") as fh:
        json.dump({"aggregates": aggregates, "cases": cases}, fh, default=float)


if __name__ == "__main__":
    main(*sys.argv[1:4])
