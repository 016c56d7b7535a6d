"""How much of a page's story does extraction keep, and how much chrome leaks in?

Scored on a directory in the format of the Zyte/Scrapinghub article
extraction benchmark (``ground-truth.json`` with a human-written
``articleBody`` per page, pages in ``html/<id>.html.gz``), the way that
benchmark's ``evaluate.py`` scores it, so our figure is comparable with the
published ones (trafilatura about 0.95):

* both texts are tokenised the same way (``\\w+``, lowercased here);
* per document, true/false positives and false negatives are counted over
  the bag of 4-token shingles (word order matters a little, so a page that
  has all the words but in a jumbled order is not a perfect score), then
  normalised to sum to 1 so that long articles do not outweigh short ones;
* precision is the mean over documents that predicted something, recall the
  mean over documents with gold text, and F1 the harmonic mean of the two
  means.

The same figures over single tokens (plain bag-of-words overlap) are reported
beside them as ``token``.
"""

from __future__ import annotations

import gzip
import json
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from crawler.extraction import MAX_INPUT_BYTES, ExtractionError, extract_text

__all__ = ["evaluate_extraction", "format_extraction_table", "shingle_counts"]

SHINGLE_SIZE = 4
_TOKEN_RE = re.compile(r"\w+")
_WORST_SHOWN = 5


def shingle_counts(text: str, n: int = SHINGLE_SIZE) -> Counter[tuple[str, ...]]:
    """Bag of n-token shingles; a text shorter than n is one short shingle."""
    tokens = _TOKEN_RE.findall((text or "").lower())
    return Counter(
        tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i : i + n]
    )


def _tp_fp_fn(true: str, pred: str, n: int) -> tuple[float, float, float]:
    gold, got = shingle_counts(true, n), shingle_counts(pred, n)
    tp = sum((gold & got).values())
    fp = sum((got - gold).values())
    fn = sum((gold - got).values())
    total = tp + fp + fn
    if total == 0:
        return 0.0, 0.0, 0.0
    return tp / total, fp / total, fn / total


def _precision(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fp == 0 else tp / (tp + fp)


def _recall(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fn == 0 else tp / (tp + fn)


def _aggregate(counts: list[tuple[float, float, float]]) -> dict[str, float]:
    precisions = [_precision(*c) for c in counts if c[0] + c[1] > 0]
    recalls = [_recall(*c) for c in counts if c[0] + c[2] > 0]
    precision = statistics.fmean(precisions) if precisions else 0.0
    recall = statistics.fmean(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _read_page(path: Path) -> bytes:
    """Decompress with a cap: a corrupt or hostile archive cannot exhaust memory."""
    limit = 4 * MAX_INPUT_BYTES
    with gzip.open(path, "rb") as handle:
        data = handle.read(limit + 1)
    return data[:limit]


def evaluate_extraction(dir: Path) -> dict[str, Any]:  # noqa: A002 - name fixed by the API
    """Score :func:`crawler.extraction.extract_text` on a benchmark directory.

    Pages that are missing or fail to extract count as empty predictions
    (recall 0, as in the benchmark) and are listed in ``failures``.
    """
    directory = Path(dir)
    truth_path = directory / "ground-truth.json"
    if not truth_path.is_file():
        raise FileNotFoundError(
            f"{truth_path} not found: expected a directory with ground-truth.json and html/<id>.html.gz"
        )
    ground_truth: dict[str, dict[str, Any]] = json.loads(truth_path.read_text(encoding="utf-8"))
    if not ground_truth:
        raise ValueError(f"{truth_path} holds no documents")

    shingles: list[tuple[float, float, float]] = []
    tokens: list[tuple[float, float, float]] = []
    failures: list[dict[str, str]] = []
    scored: list[tuple[float, str, str]] = []
    for doc_id in sorted(ground_truth):
        gold = ground_truth[doc_id].get("articleBody") or ""
        url = ground_truth[doc_id].get("url") or ""
        page = directory / "html" / f"{doc_id}.html.gz"
        predicted = ""
        try:
            predicted = extract_text(_read_page(page))
        except (OSError, EOFError, ExtractionError) as exc:
            failures.append({"id": doc_id, "url": url, "error": f"{type(exc).__name__}: {exc}"})
        counts = _tp_fp_fn(gold, predicted, SHINGLE_SIZE)
        shingles.append(counts)
        tokens.append(_tp_fp_fn(gold, predicted, 1))
        p, r = _precision(*counts), _recall(*counts)
        scored.append((2 * p * r / (p + r) if p + r else 0.0, doc_id, url))

    result: dict[str, Any] = {
        "documents": len(ground_truth),
        **_aggregate(shingles),
        "shingle_size": SHINGLE_SIZE,
        "token": _aggregate(tokens),
        "failures": failures,
        "worst": [
            {"id": doc_id, "url": url, "f1": round(f1, 3)}
            for f1, doc_id, url in sorted(scored)[:_WORST_SHOWN]
        ],
    }
    return result


def format_extraction_table(result: dict[str, Any]) -> str:
    """Plain-text table for the CLI and CI logs."""
    token = result.get("token", {})
    lines = [
        f"extraction on {result['documents']} documents "
        f"({len(result.get('failures', []))} failed to extract)",
        f"{'unit':<16} {'precision':>9} {'recall':>9} {'F1':>9}",
        f"{str(result.get('shingle_size', SHINGLE_SIZE)) + '-token shingles':<16} "
        f"{result['precision']:>9.3f} {result['recall']:>9.3f} {result['f1']:>9.3f}",
    ]
    if token:
        lines.append(
            f"{'single tokens':<16} {token['precision']:>9.3f} {token['recall']:>9.3f} {token['f1']:>9.3f}"
        )
    for failure in result.get("failures", []):
        lines.append(f"failed: {failure['id'][:12]} {failure['url']} ({failure['error']})")
    worst = result.get("worst", [])
    if worst:
        lines.append("lowest F1: " + ", ".join(f"{w['id'][:12]} {w['f1']:.2f}" for w in worst))
    return "\n".join(lines)
