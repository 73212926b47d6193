"""Expert review of a dataset run: verdicts per case, stored in the run folder, used by the dataset.

``longisynth review RUN_DIR`` serves the run's cases on the VTT's reading page (every timepoint
of a case side by side, three views each). Verdicts go to ``RUN_DIR/review/verdicts.jsonl``
(:mod:`.store`); the manifest's ``review_*`` columns and the review section of ``summary.md``
follow them (:mod:`.apply`); ``longisynth dataset export RUN_DIR --skip-rejected`` leaves rejected
cases out (:mod:`longisynth.dataset.export`).
"""
