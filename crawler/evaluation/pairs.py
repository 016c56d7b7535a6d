"""Score the verifier on a directory of labelled (story, page) pairs.

The directory holds `pairs.csv` (`id,seed,candidate,label,detail`, paths relative to
the directory; `.txt` is text, `.html` a raw page run through extraction). Derived
labels are scored for recall and kind; independent/unrelated for false positives;
any other label (e.g. `same_story`) is reported, not scored.

A Background is learned from every candidate text in the directory: that is what a
crawl collects anyway, and it is how boilerplate shared by many pages is recognised.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crawler.matching.background import Background
from crawler.matching.compare import compare, prepare
from crawler.matching.verdict import DERIVED_KINDS

__all__ = ["evaluate_pairs", "format_pairs_table", "load_pairs"]

NOT_DERIVED_LABELS = ("independent", "unrelated")
REQUIRED_COLUMNS = ("id", "seed", "candidate", "label")


def _default_extractor() -> Callable[[str], str]:
    try:
        from crawler.extraction import extract_text  # noqa: PLC0415 (optional, lazy)
    except ImportError as exc:
        raise ValueError(
            "pairs.csv lists .html files but crawler.extraction.extract_text is not "
            f"available ({exc}); pass extract_html="
        ) from exc
    return extract_text


def load_pairs(directory: Path) -> list[dict[str, str]]:
    """Rows of DIR/pairs.csv, validated: every row has an id, a label and both files."""
    directory = Path(directory)
    csv_path = directory / "pairs.csv"
    if not csv_path.is_file():
        raise ValueError(f"{csv_path}: missing (expected columns {','.join(REQUIRED_COLUMNS)},detail)")
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {', '.join(missing)}")
        rows = []
        for lineno, row in enumerate(reader, start=2):
            for c in REQUIRED_COLUMNS:
                if not (row.get(c) or "").strip():
                    raise ValueError(f"{csv_path} line {lineno}: empty {c!r}")
            row = {k: (v or "").strip() for k, v in row.items() if k is not None}
            for c in ("seed", "candidate"):
                f = directory / row[c]
                if not f.is_file():
                    raise ValueError(f"{csv_path} line {lineno} (id {row['id']}): {c} file {f} not found")
            rows.append(row)
    if not rows:
        raise ValueError(f"{csv_path}: no pairs")
    return rows


def _reader(directory: Path, extract_html: Callable[[str], str] | None) -> Callable[[str], str]:
    cache: dict[str, str] = {}
    extractor = extract_html

    def read(rel: str) -> str:
        nonlocal extractor
        if rel in cache:
            return cache[rel]
        path = directory / rel
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        if path.suffix.lower() in (".html", ".htm"):
            if extractor is None:
                extractor = _default_extractor()
            try:
                text = extractor(text)
            except Exception as exc:  # extraction is another module's job: name the file
                raise ValueError(f"{path}: extraction failed: {exc}") from exc
        cache[rel] = text
        return text

    return read


def evaluate_pairs(
    directory: Path,
    *,
    extract_html: Callable[[str], str] | None = None,
    use_background: bool = True,
) -> dict[str, Any]:
    """Run `compare` on every pair of DIR/pairs.csv and score it against the labels."""
    directory = Path(directory)
    rows = load_pairs(directory)
    read = _reader(directory, extract_html)

    background = None
    if use_background:
        seen: set[str] = set()
        texts = []
        for r in rows:
            if r["candidate"] not in seen:
                seen.add(r["candidate"])
                texts.append(read(r["candidate"]))
        background = Background.from_texts(texts)

    prepared: dict[str, Any] = {}
    results = []
    by_label: dict[str, dict[str, int]] = {}
    tp = fp = fn = 0
    kind_right = derived_n = 0
    elapsed = 0.0
    for r in rows:
        label = r["label"]
        if r["seed"] not in prepared:
            prepared[r["seed"]] = prepare(read(r["seed"]))
        page = read(r["candidate"])
        t0 = time.perf_counter()
        v = compare(prepared[r["seed"]], page, background=background)
        elapsed += time.perf_counter() - t0
        stats = by_label.setdefault(label, {"n": 0, "flagged": 0})
        stats["n"] += 1
        stats["flagged"] += int(v.derived)
        if label in DERIVED_KINDS:
            derived_n += 1
            kind_right += int(v.kind == label)
            tp += int(v.derived)
            fn += int(not v.derived)
        elif label in NOT_DERIVED_LABELS:
            fp += int(v.derived)
        results.append(
            {
                "id": r["id"],
                "label": label,
                "kind": v.kind,
                "confidence": v.confidence,
                "story_coverage": v.story_coverage,
                "page_coverage": v.page_coverage,
                "scores": v.scores,
            }
        )
    # Undefined scores are None, not a flattering 1.0: a directory without derived
    # pairs (semeval's) has no recall, and one where nothing is flagged no precision.
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    for stats in by_label.values():
        stats["rate"] = round(stats["flagged"] / stats["n"], 4) if stats["n"] else 0.0
    return {
        "dir": str(directory),
        "pairs": len(rows),
        "precision": _round(precision),
        "recall": _round(recall),
        "f1": _round(f1),
        "kind_accuracy": round(kind_right / derived_n, 4) if derived_n else None,
        "by_label": by_label,
        "background_docs": len(background) if background is not None else 0,
        "ms_per_pair": round(1000 * elapsed / len(rows), 3),
        "results": results,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _show(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_pairs_table(result: dict[str, Any], *, show_pairs: bool = False) -> str:
    """A plain-text summary (and optionally every pair) for the terminal."""
    lines = [
        f"{result.get('dir', '')}: {result['pairs']} pairs, "
        f"background {result.get('background_docs', 0)} docs, {result.get('ms_per_pair', 0)} ms/pair",
        f"precision {_show(result['precision'])}  recall {_show(result['recall'])}  f1 {_show(result['f1'])}  "
        f"kind accuracy {_show(result['kind_accuracy'])}",
        "",
        f"{'label':<12} {'n':>5} {'flagged':>8} {'rate':>7}",
    ]
    for label, st in sorted(result["by_label"].items()):
        lines.append(f"{label:<12} {st['n']:>5} {st['flagged']:>8} {st['flagged'] / st['n']:>7.3f}")
    kinds: dict[tuple[str, str], int] = {}
    for r in result["results"]:
        kinds[(r["label"], r["kind"])] = kinds.get((r["label"], r["kind"]), 0) + 1
    lines += ["", "label -> kind: " + ", ".join(f"{a}->{b}: {n}" for (a, b), n in sorted(kinds.items()))]
    if show_pairs:
        lines += ["", f"{'id':<28} {'label':<12} {'kind':<12} {'conf':>5} {'story':>6} {'page':>6}"]
        for r in result["results"]:
            lines.append(
                f"{r['id'][:28]:<28} {r['label']:<12} {r['kind']:<12} {r['confidence']:>5.2f} "
                f"{r['story_coverage']:>6.2f} {r['page_coverage']:>6.2f}"
            )
    return "\n".join(lines)
