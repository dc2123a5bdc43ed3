"""The SAM-based grounding agent: phrases in a trace become instance masks, boxes and points.

- `phrases`: finding every mention of an object phrase in a trace (plural-aware).
- `relations`: the spatial relation a question/answer claims, and whether boxes satisfy it.
- `proposals`: where segmentation prompts come from (annotations, teacher points, a detector,
  a text-promptable SAM), each a sequence of attempts.
- `verify`: per-attempt checks (area, near-duplicates, count).
- `segmenters`: the segmenter section of the config and the factory of adapters.
- `agent`: propose -> segment -> verify -> retry, within a bound.
"""
