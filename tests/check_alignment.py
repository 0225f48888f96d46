#!/usr/bin/python3
"""check_alignment.py DATA.h5 TEXT [--tt TT]: the alignment datasets of kd import text --teacher-tokenizer
(docs/format.md, "Two tokenizations") checked against the text, with h5py and the two records' byte strings:
  - each split's student rows, stitched at their one-token overlap, spell a text in which every document of
    TEXT (split at '%' lines) appears;
  - /SPLIT/offsets: where each student token ends, in bytes from the row's first byte (its running sum of
    token lengths);
  - the teacher row: its tokens (teacher_offsets > 0; padding 0, teacher_mask on every token but the first)
    are contiguous, spell the row's bytes at their offsets, end within the row, and begin at the row's first
    byte or within the teacher token straddling it: no teacher token that lies inside the row is missing
    (bar those past Tt);
  - the records: /tokenizer and /teacher_tokenizer give every id's bytes.
Prints a summary line; exits 1 with the first problem."""
import sys

import h5py
import numpy as np


def vocab(rec):
    return [bytes(v) for v in rec["vocab"][()]]


def main():
    path, text_path = sys.argv[1], sys.argv[2]
    tt_expected = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--tt" else None
    f = h5py.File(path, "r")
    vs, vt = vocab(f["tokenizer"]), vocab(f["teacher_tokenizer"])
    longest = max(len(v) for v in vt)
    raw = open(text_path, "rb").read()
    checked = aligned = cut_rows = 0
    stitched_all = b""
    for split in ("train", "valid", "test"):
        if split not in f:
            continue
        g = f[split]
        tok, mask, off = g["tokens"][()], g["mask"][()], g["offsets"][()]
        ttok, tmask, toff = g["teacher_tokens"][()], g["teacher_mask"][()], g["teacher_offsets"][()]
        N, T = tok.shape
        Tt = ttok.shape[1]
        if tt_expected is not None and Tt != tt_expected:
            sys.exit("%s: teacher rows of %d, want %d" % (split, Tt, tt_expected))
        stream = b""
        prev = None  # (boundaries of the previous row's teacher tokens, where this row starts in that row)
        with_teacher = 0
        for r in range(N):
            n = 1 + int(mask[r, 1:].sum())
            if mask[r, n:].any():
                sys.exit("%s row %d: a gap in the mask" % (split, r))
            pieces = [vs[int(t)] for t in tok[r, :n]]
            row = b"".join(pieces)
            want = np.cumsum([len(p) for p in pieces])
            if not (off[r, :n] == want).all() or off[r, n:].any():
                sys.exit("%s row %d: offsets %s, the token lengths give %s" % (split, r, off[r, :n], want))
            stream += row if r == 0 else row[len(pieces[0]):]
            q = int((toff[r] > 0).sum())
            if (toff[r, q:] != 0).any() or (ttok[r, q:] != 0).any():
                sys.exit("%s row %d: teacher padding not zero" % (split, r))
            if not (tmask[r, 1:q] == 1).all() or tmask[r, 0] or tmask[r, q:].any():
                sys.exit("%s row %d: teacher mask %s for %d tokens" % (split, r, tmask[r], q))
            tp = [vt[int(t)] for t in ttok[r, :q]]
            # rows overlap by one student token: the previous row's teacher tokens give every teacher boundary
            # from its teacher row's start to its end, so where this row's teacher row must start is known
            # exactly when one of them lies at or after this row's first byte
            if prev is not None:
                bounds, b0 = prev
                later = [x for x in bounds if x >= b0]
                if later and min(bounds) <= b0:
                    want_start = min(later) - b0
                    got_start = int(toff[r, 0]) - len(tp[0]) if q else None
                    row_len = int(off[r, n - 1])
                    if q == 0 and row_len - want_start < longest:
                        pass  # the teacher token starting there may end past the row: none fits
                    elif got_start != want_start:
                        sys.exit("%s row %d: the teacher row starts at byte %s of the row, the previous row's teacher "
                                 "tokens put the first boundary at %d" % (split, r, got_start, want_start))
            if q:
                with_teacher += 1
                start0 = int(toff[r, 0]) - len(tp[0])
                prev = (sorted(set([start0] + [int(x) for x in toff[r, :q]])), int(off[r, n - 2]) if n > 1 else 0)
            else:
                prev = None
            if q:
                start = int(toff[r, 0]) - len(tp[0])
                if start < 0 or b"".join(tp) != row[start:int(toff[r, q - 1])]:
                    sys.exit("%s row %d: teacher tokens %s do not spell the row's bytes at their offsets" % (split, r, tp))
                if not (np.cumsum([len(p) for p in tp]) + start == toff[r, :q]).all():
                    sys.exit("%s row %d: teacher offsets %s are not where its tokens end" % (split, r, toff[r, :q]))
                if start >= longest:
                    sys.exit("%s row %d: the teacher row starts %d bytes in: a token missing before it" % (split, r, start))
                if q < Tt and len(row) - int(toff[r, q - 1]) >= longest:
                    sys.exit("%s row %d: the teacher row ends %d bytes early" % (split, r, len(row) - toff[r, q - 1]))
                cut_rows += q == Tt
                ends = set(int(x) for x in off[r, :n - 1])
                aligned += sum(int(x) in ends for x in toff[r, :q])
            checked += 1
        stitched_all += stream
        if N and not with_teacher:
            sys.exit("%s: no row has teacher tokens" % split)
    docs = [d for d in raw.split(b"\n%\n")]
    for d in docs:
        d = d.rstrip(b"\n")
        if d and d not in stitched_all:
            sys.exit("a document of %s is in no split's rows: %r" % (text_path, d[:60]))
    print("alignment: %d rows checked, %d aligned teacher positions, %d rows full at Tt" % (checked, aligned, cut_rows))


if __name__ == "__main__":
    main()
