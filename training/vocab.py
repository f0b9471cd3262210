"""Tokenizer files for the demo models, in the formats the real models ship.

- CLIP: a byte-level BPE `vocab.json` + `merges.txt` as OpenAI's CLIP ships them (tokens with a
  `</w>` end-of-word suffix), whose merges spell every word of the world's English vocabulary as
  one token; any other word still tokenises, letter by letter.
- BriVL: a BERT `vocab.txt` of single characters, like Chinese RoBERTa-wwm-ext's (which also
  tokenises Chinese character by character).
"""

from __future__ import annotations

import json
from pathlib import Path

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CLIP_SPECIALS = ["<|startoftext|>", "<|endoftext|>"]


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's reversible byte -> printable character table."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def write_clip_vocab(directory: Path, words: list[str]) -> int:
    """Write vocab.json + merges.txt; returns the vocabulary size (end-of-text is the last id)."""
    base = list(_bytes_to_unicode().values())
    vocab = base + [s + "</w>" for s in base]
    merges: list[tuple[str, str]] = []
    known = set(vocab)
    for word in sorted(set(words)):
        symbols = [c for c in word[:-1]] + [word[-1] + "</w>"]
        while len(symbols) > 1:  # merge left to right: ((s n) o) w</w>
            pair = (symbols[0], symbols[1])
            merged = pair[0] + pair[1]
            if merged not in known:
                merges.append(pair)
                vocab.append(merged)
                known.add(merged)
            symbols = [merged] + symbols[2:]
    vocab += CLIP_SPECIALS
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return len(vocab)


def write_bert_vocab(path: Path, characters: list[str]) -> int:
    """Write a character-level BERT vocab.txt; returns its size."""
    tokens = BERT_SPECIALS + [c for c in dict.fromkeys(characters) if c.strip() and c not in BERT_SPECIALS]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return len(tokens)
