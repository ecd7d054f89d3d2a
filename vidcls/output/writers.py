"""The machine formats' writers: JSON, JSON lines, CSV/TSV and subtitles (SRT, WebVTT).

Each consumes the run's events as they arrive (`write`) and finishes with `close`. jsonl streams
every record at once; json, srt and vtt need the whole run. They write where they are told.
"""

from __future__ import annotations

import csv
import json
import os
from typing import IO, Any

from ..events import Event, Failed, FileDone, SegmentDone, WindowDone
from ..records import error_record, ranked


def clock(seconds: float, sep: str = ".") -> str:
    """HH:MM:SS.mmm (sep "," for SRT)."""
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


class Writer:
    wants_frames = False  # whether the command line should `attach` a frame per segment

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def write(self, event: Event) -> None:
        pass

    def attach(self, file: str, jpegs: list[bytes | None]) -> None:
        """A JPEG per segment of `file` (None where no frame could be taken)."""

    def close(self) -> None:
        self.out.flush()


class JsonWriter(Writer):
    """One document per call: the record for one file, a list for several."""

    def __init__(self, out: IO[str]) -> None:
        super().__init__(out)
        self.records: list[dict[str, Any]] = []

    def write(self, event: Event) -> None:
        if isinstance(event, FileDone):
            self.records.append(event.record)
        elif isinstance(event, Failed):
            self.records.append(error_record(event.file, event.message))

    def close(self) -> None:
        document: Any = self.records[0] if len(self.records) == 1 else self.records
        self.out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        super().close()


class JsonlWriter(Writer):
    """A record per line: window..., segment..., file (or error).

    To a terminal or pipe every record goes out at once. `durable` (a results file) holds a
    file's records until its file record and appends them as one block, flushed and fsynced, so
    a crash loses at most the files in flight and `--resume` can trust what is there.
    """

    def __init__(self, out: IO[str], durable: bool = False) -> None:
        super().__init__(out)
        self.durable = durable
        self.pending: dict[str, list[str]] = {}

    def _emit(self, file: str, record: dict[str, Any], last: bool = False) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        if not self.durable:
            self.out.write(line)
            self.out.flush()
            return
        block = self.pending.setdefault(file, [])
        block.append(line)
        if last:
            self.out.write("".join(self.pending.pop(file)))
            self.out.flush()
            os.fsync(self.out.fileno())

    def write(self, event: Event) -> None:
        if isinstance(event, WindowDone) and event.record is not None:
            self._emit(event.file, event.record)
        elif isinstance(event, SegmentDone):
            self._emit(event.file, event.record)
        elif isinstance(event, FileDone):
            summary = {k: v for k, v in event.record.items() if k not in ("windows", "segments")}
            self._emit(event.file, summary, last=True)
        elif isinstance(event, Failed):
            self.pending.pop(event.file, None)
            self._emit(event.file, error_record(event.file, event.message), last=True)


class CsvWriter(Writer):
    """predict: a row per (file, rank); segment: a row per segment. tsv times in integer ms.
    `follow`: each segment's row as soon as it is final, flushed."""

    def __init__(self, out: IO[str], mode: str, tab: bool, follow: bool = False) -> None:
        super().__init__(out)
        self.tab = tab
        self.follow = follow
        self.rows = csv.writer(out, delimiter="\t" if tab else ",", lineterminator="\n")
        if mode == "predict":
            self.header = ["file", "rank", "label", "index", "score", "error"]
        elif tab:
            self.header = ["file", "start_ms", "end_ms", "label", "index", "score", "error"]
        else:
            self.header = ["file", "start", "end", "label", "index", "score", "error"]
        self.rows.writerow(self.header)

    def _time(self, seconds: float) -> str:
        return str(int(round(seconds * 1000))) if self.tab else f"{seconds:.3f}"

    def write(self, event: Event) -> None:
        if isinstance(event, Failed):
            self.rows.writerow([event.file] + [""] * (len(self.header) - 2) + [event.message])
        if self.follow and isinstance(event, SegmentDone):
            self._segment(event.file, event.record)
            self.out.flush()
        if not isinstance(event, FileDone):
            return
        record = event.record
        name = record["file"]
        for rank, item in ranked(record.get("top_k", [])):
            self.rows.writerow([name, rank, item["label"], item["index"], item["score"], ""])
        for seg in () if self.follow else record.get("segments", ()):
            self._segment(name, seg)
        self.out.flush()

    def _segment(self, name: str, seg: dict[str, Any]) -> None:
        start, end = self._time(seg["start"]), self._time(seg["end"])
        self.rows.writerow([name, start, end, seg["label"], seg["index"], seg["score"], ""])


def _srt_text(text: str) -> str:
    """SRT has no escapes, and players read <b>, <font …> and {\\an8} in cue text as markup:
    an untrusted label keeps its letters, with look-alikes for the markup characters, on one
    line (a blank line would end the cue)."""
    table = str.maketrans({"<": "‹", ">": "›", "{": "(", "}": ")", "\n": " ", "\r": " "})
    return text.translate(table)


def _vtt_text(text: str) -> str:
    """WebVTT cue text with its three escapes (so "-->" cannot appear), on one line."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r", " ").replace("\n", " ")


class SubtitleWriter(Writer):
    """SRT or WebVTT cues of the merged segments, "label (score)" as the text."""

    def __init__(self, out: IO[str], vtt: bool) -> None:
        super().__init__(out)
        self.vtt = vtt
        self.segments: list[dict[str, Any]] = []

    def write(self, event: Event) -> None:
        if isinstance(event, FileDone):
            self.segments.extend(event.record["segments"])

    def close(self) -> None:
        sep = "." if self.vtt else ","
        blocks = ["WEBVTT\n"] if self.vtt else []
        for n, seg in enumerate(self.segments, 1):
            cue = f"{clock(seg['start'], sep)} --> {clock(seg['end'], sep)}"
            text = f"{seg['label']} ({seg['score']:.2f})"
            text = _vtt_text(text) if self.vtt else _srt_text(text)
            blocks.append(f"{cue}\n{text}\n" if self.vtt else f"{n}\n{cue}\n{text}\n")
        self.out.write("\n".join(blocks))
        super().close()


def detections(event: FileDone, multi_label: int) -> list[tuple[str, float, float, float]]:
    """A file's detections (label, start, end, score): its timeline's segments, or with
    `multi_label` K > 1 each class's runs among the top K of the moment, which may overlap."""
    from ..segments import top_k_runs

    if multi_label <= 1 or event.curves is None:
        return [(s["label"], s["start"], s["end"], s["score"]) for s in event.record["segments"]]
    tracks = event.curves["classes"]
    runs = top_k_runs(event.curves["pieces"], [t["probs"] for t in tracks], multi_label)
    runs.sort(key=lambda r: (r[1], r[0]))
    return [(tracks[c]["label"], round(a, 3), round(b, 3), round(p, 6)) for c, a, b, p in runs]


class ActivityNetWriter(Writer):
    """One ActivityNet results document (version 1.3) for all files of the run, at the end."""

    def __init__(self, out: IO[str], video_id: str, multi_label: int) -> None:
        super().__init__(out)
        self.style = video_id
        self.multi_label = multi_label
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.models: list[str] = []

    def write(self, event: Event) -> None:
        if not isinstance(event, FileDone):
            return
        from ..evaluate import video_id

        vid = video_id(event.record["file"], self.style)
        self.results[vid] = [
            {"label": label, "score": score, "segment": [start, end]}
            for label, start, end, score in detections(event, self.multi_label)
        ]
        if event.record["model"] not in self.models:
            self.models.append(event.record["model"])

    def close(self) -> None:
        from .. import __version__

        details = f"vidcls {__version__}, model {', '.join(self.models) or 'none'}"
        document = {
            "version": "VERSION 1.3",
            "results": self.results,
            "external_data": {"used": False, "details": details},
        }
        self.out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        super().close()


class ThumosWriter(Writer):
    """THUMOS'14 detection lines, `video t0 t1 class score`, whitespace in names as _."""

    def __init__(self, out: IO[str], video_id: str, multi_label: int) -> None:
        super().__init__(out)
        self.style = video_id
        self.multi_label = multi_label

    def write(self, event: Event) -> None:
        if not isinstance(event, FileDone):
            return
        from ..evaluate import video_id

        vid = "_".join(video_id(event.record["file"], self.style).split())
        for label, start, end, score in detections(event, self.multi_label):
            name = "_".join(label.split())
            self.out.write(f"{vid} {start:.3f} {end:.3f} {name} {score:.6f}\n")
        self.out.flush()
