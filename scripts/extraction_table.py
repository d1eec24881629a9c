#!/usr/bin/env python3
"""Extraction quality per corpus, part and half, for one or more systems, as Markdown rows.

Usage:
    scripts/extraction_table.py NAME=OUT_DIR[,OUT_DIR2] ...

Each OUT_DIR holds `<page id>.txt` files (as `feedmill extract --format text --out-dir` writes
them); one directory may hold the outputs for both corpora. The scores are those of
`../shared/tools/score_extraction.py` (imported, same metric), on:

* extraction-dev (91 pages) and extraction-dev2 (2,050 pages), all pages and each half of the
  scorer's host split (`--split dev|test`);
* each part of extraction-dev2 (WCXB, Dragnet, Readability, from the page id prefix), all and
  per half.

Columns are F1 (and the number of empty outputs in brackets where there are any).
"""
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent.parent / 'shared'
sys.path.insert(0, str(SHARED / 'tools'))
import score_extraction as scorer  # noqa: E402

CORPORA = {
    'dev': SHARED / 'corpus' / 'extraction-dev' / 'ground-truth.json',
    'dev2': SHARED / 'corpus' / 'extraction-dev2' / 'ground-truth.json',
}
PARTS = ['wcxb', 'dragnet', 'readability']


def load_outputs(dirs, ids):
    preds = {}
    for d in dirs:
        found, _ = scorer.load_dir(Path(d), ids)
        preds.update({k: v for k, v in found.items() if v})
    return preds


def score(truth, preds):
    if not truth:
        return None
    m = scorer.evaluate(truth, {k: preds.get(k, '') for k in truth}, 0, 0)
    return m['f1'], m['empty_pred']


def cell(result):
    if result is None:
        return '–'
    f1, empty = result
    return f'{f1:.3f}' + (f' ({empty})' if empty else '')


def groups(corpus, truth, urls):
    """(label, ids) for the whole corpus and its parts, each all / dev half / test half."""
    sets = [(corpus, list(truth))]
    if corpus == 'dev2':
        sets += [(part, [k for k in truth if k.startswith(part + '-')]) for part in PARTS]
    for label, ids in sets:
        for half in ('all', 'dev', 'test'):
            chosen = [k for k in ids if half == 'all' or scorer.split_of(urls[k]) == half]
            yield f'{label} {half}', chosen


def main(argv):
    systems = [(a.split('=', 1)[0], a.split('=', 1)[1].split(',')) for a in argv if '=' in a]
    if not systems:
        sys.exit(__doc__)
    table = {}
    headers = []
    for corpus, gt in CORPORA.items():
        truth, urls = scorer.load_truth(gt)
        for label, ids in groups(corpus, truth, urls):
            headers.append(label)
            for name, dirs in systems:
                preds = load_outputs(dirs, ids)
                table[name, label] = score({k: truth[k] for k in ids}, preds)
    print('| system | ' + ' | '.join(headers) + ' |')
    print('|---' * (len(headers) + 1) + '|')
    for name, _ in systems:
        print(f'| {name} | ' + ' | '.join(cell(table[name, h]) for h in headers) + ' |')


if __name__ == '__main__':
    main(sys.argv[1:])
