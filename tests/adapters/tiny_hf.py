"""Tiny random-weight transformers models saved to folders, so adapters load them the real way.

No checkpoint can be downloaded here; these prove wiring, shapes and frames, not mask quality.
"""

from __future__ import annotations

import json
from pathlib import Path

WORDS = ["red", "disc", "discs", "coin", "coins", "cat", "a", "the", "square"]


def clip_tokenizer(folder: Path):
    """A CLIP BPE tokenizer over single letters and a few whole words."""
    from transformers import CLIPTokenizer

    # Special tokens last, as in CLIP's vocabulary: OWLv2 treats a query starting with id 0 as padding.
    vocab: dict[str, int] = {}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    for word in WORDS:
        vocab.setdefault(word + "</w>", len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)


def _decoder():
    return dict(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32)


def save_sam(folder: Path) -> Path:
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    vision = dict(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2, image_size=256,
                  patch_size=16, global_attn_indexes=[1], window_size=4, mlp_dim=64, num_pos_feats=16)
    cfg = SamConfig(vision_config=vision, prompt_encoder_config=dict(hidden_size=32, image_size=256, patch_size=16),
                    mask_decoder_config=_decoder())
    SamModel(cfg).save_pretrained(folder)
    SamProcessor(SamImageProcessor(size={"longest_edge": 256}, pad_size={"height": 256, "width": 256})).save_pretrained(folder)
    return folder


def save_sam2(folder: Path) -> Path:
    from transformers import Sam2Config, Sam2ImageProcessor, Sam2Model, Sam2Processor

    backbone = dict(model_type="sam2_hiera_det_model", hidden_size=16, num_attention_heads=1, image_size=[128, 128],
                    blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
                    num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 4, 4],
                    global_attention_blocks=[3], window_positional_embedding_background_size=[2, 2])
    vision = dict(backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
                  backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]], fpn_hidden_size=32)
    cfg = Sam2Config(vision_config=vision, prompt_encoder_config=dict(hidden_size=32, image_size=128, patch_size=16),
                     mask_decoder_config=_decoder())
    Sam2Model(cfg).save_pretrained(folder)
    Sam2Processor(Sam2ImageProcessor(size={"height": 128, "width": 128})).save_pretrained(folder)
    return folder


def _sam3_vision() -> dict:
    vit = dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=2, image_size=112, patch_size=14, window_size=4, global_attn_indexes=[1],
               pretrain_image_size=56)
    return dict(model_type="sam3_vision_model", backbone_config=vit, fpn_hidden_size=32,
                backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]])


def save_sam3_tracker(folder: Path) -> Path:
    from transformers import Sam2ImageProcessor, Sam3TrackerConfig, Sam3TrackerModel, Sam3TrackerProcessor

    cfg = Sam3TrackerConfig(vision_config=_sam3_vision(),
                            prompt_encoder_config=dict(hidden_size=32, image_size=112, patch_size=14),
                            mask_decoder_config=_decoder())
    Sam3TrackerModel(cfg).save_pretrained(folder)
    Sam3TrackerProcessor(Sam2ImageProcessor(size={"height": 112, "width": 112})).save_pretrained(folder)
    return folder


def save_sam3(folder: Path) -> Path:
    from transformers import Sam3Config, Sam3ImageProcessor, Sam3Model, Sam3Processor

    tokenizer = clip_tokenizer(folder)
    text = dict(model_type="clip_text_model", vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                projection_dim=32, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id)
    small = dict(hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=64)
    cfg = Sam3Config(vision_config=_sam3_vision(), text_config=text, geometry_encoder_config=small,
                     detr_encoder_config=small, detr_decoder_config=dict(small, num_queries=10),
                     mask_decoder_config=dict(hidden_size=32, num_attention_heads=2))
    Sam3Model(cfg).save_pretrained(folder)
    image_processor = Sam3ImageProcessor(size={"height": 112, "width": 112}, mask_size={"height": 32, "width": 32})
    Sam3Processor(image_processor, tokenizer).save_pretrained(folder)
    return folder


def save_owlv2(folder: Path) -> Path:
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    tokenizer = clip_tokenizer(folder)
    text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=16, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=64,
                  patch_size=16)
    Owlv2ForObjectDetection(Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)).save_pretrained(folder)
    Owlv2Processor(Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer).save_pretrained(folder)
    return folder


def save_grounding_dino(folder: Path) -> Path:
    from transformers import (
        BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection, GroundingDinoImageProcessor,
        GroundingDinoProcessor, SwinConfig,
    )

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"))
    swin = SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                      window_size=2, out_features=["stage2", "stage3", "stage4"])
    text = dict(model_type="bert", vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                num_attention_heads=2, intermediate_size=64)
    # Two decoder layers: the box heads of layers after the first are tied to the first.
    cfg = GroundingDinoConfig(backbone_config=swin, text_config=text, d_model=32, encoder_layers=1, decoder_layers=2,
                              encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                              decoder_ffn_dim=64, num_queries=10, encoder_n_points=2, decoder_n_points=2,
                              max_text_len=16)
    GroundingDinoForObjectDetection(cfg).save_pretrained(folder)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    GroundingDinoProcessor(image_processor, tokenizer).save_pretrained(folder)
    return folder
