"""Where items come from: one module per source kind, plus safe image decoding.

- `manifest`: JSONL / CSV / Parquet manifests, one item per line or row (`manifest.py`, `rows.py`).
- `parquet`: Parquet with embedded images, the CountBenchQA layout (`parquet_images.py`).
- `coco`: COCO instance annotations as counting questions with masks and boxes (`coco.py`).
- `folder`: a folder of images with a questions file (`folder.py`).
- `demo`: the offline demo set, drawn scenes and a real photograph (`demo.py`, `scenes.py`, `photos.py`).
Sources yield `Item`s lazily; an entry that cannot become an item is a `BadItem` (base.py). The
read stage (`synth.stages.read`) samples them (`sampling.py`), loads and decodes each image
(`images.py`) and checks and scales the annotations with it (`annotations.py`).
"""
