"""Trains a SentencePiece-style BPE with the Python `tokenizers` package and writes it in the
two spellings such files have, for the end-to-end test of piece-by-piece encoding.

Usage: train_sentencepiece.py OUT_DIR INPUT.jsonl...

The model is trained as SentencePiece trains (each `▁` begins a word), with byte fallback and
`<unk>`, `<s>`, `</s>` as special tokens; runs of `▁` are added as tokens, as Llama 2's
vocabulary has them. Written: `OUT_DIR/mistral.json` (a `Metaspace` pre-tokenizer prepending to
the first part only, not splitting, as Mistral's files) and `OUT_DIR/llama2.json` (`Prepend` and
`Replace` normalizers and no pre-tokenizer, as Llama 2's older files).
"""

import json
import sys
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers


def texts(paths):
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)["text"]


def main():
    out, inputs = Path(sys.argv[1]), sys.argv[2:]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bytes_ = ["<0x%02X>" % b for b in range(256)]
    trainer = trainers.BpeTrainer(
        vocab_size=3000, special_tokens=["<unk>", "<s>", "</s>"] + bytes_, show_progress=False
    )
    tok.train_from_iterator(texts(inputs), trainer)
    spec = json.loads(tok.to_str())
    # The byte tokens are vocabulary entries, not added tokens, in SentencePiece's files.
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] not in bytes_]
    vocab, merges = spec["model"]["vocab"], spec["model"]["merges"]
    for run, half in [("▁▁", "▁"), ("▁▁▁▁", "▁▁")]:
        assert run not in vocab
        vocab[run] = len(vocab)
        merges.append([half, half])
    spec["pre_tokenizer"] = {
        "type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False,
    }
    (out / "mistral.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    spec["pre_tokenizer"] = None
    spec["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "▁"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
    ]}
    (out / "llama2.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
