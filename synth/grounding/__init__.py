"""The SAM-based grounding agent: phrases in a trace become instance masks, boxes and points.

- `extraction`: the objects of a trace, from the item's phrases or the teacher's JSON answer.
- `prompts`: the extract/pointing templates and the run's teacher for them.
- `relations`: the spatial relation a question/answer claims, and whether boxes satisfy it.
- `proposals`: where segmentation prompts come from (annotations, teacher points, a detector,
  a text-promptable SAM), each a sequence of attempts.
- `verify`: per-attempt checks (area, near-duplicates, count).
- `segmenters`: the segmenter section of the config and the factory of adapters.
- `agent`: propose -> segment -> verify -> retry, within a bound.
"""
