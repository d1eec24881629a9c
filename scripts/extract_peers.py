#!/usr/bin/env python3
"""Run the peer extractors over the extraction corpora, for scripts/extraction_table.py.

Usage (a venv with the peers: `pip install trafilatura==2.3.1 lxml_html_clean html_text` and
`pip install --no-deps readability-lxml==0.9 chardet cssselect`):
    /path/to/venv/bin/python scripts/extract_peers.py OUT_ROOT

Writes OUT_ROOT/trafilatura/<id>.txt (`trafilatura.extract()` on the page bytes, its own
charset detection) and OUT_ROOT/readability/<id>.txt (readability-lxml's `Document(bytes)
.summary()` turned into text by html_text) for every page of extraction-dev and extraction-dev2,
as the corpus README's baselines were made.
"""
import gzip
import sys
from pathlib import Path

import html_text
import trafilatura
from readability import Document

SHARED = Path(__file__).resolve().parent.parent.parent / 'shared'
CORPORA = [SHARED / 'corpus' / 'extraction-dev' / 'html', SHARED / 'corpus' / 'extraction-dev2' / 'html']


def readability_text(page):
    return html_text.extract_text(Document(page).summary(html_partial=True))


PEERS = {'trafilatura': lambda page: trafilatura.extract(page) or '', 'readability': readability_text}


def main(out_root):
    for name, run in PEERS.items():
        out = Path(out_root) / name
        out.mkdir(parents=True, exist_ok=True)
        for corpus in CORPORA:
            for path in sorted(corpus.glob('*.html.gz')):
                page = gzip.open(path).read()
                try:
                    text = run(page)
                except Exception as error:  # a peer failing on a page is an empty output
                    print(f'{name}: {path.name}: {error}', file=sys.stderr)
                    text = ''
                (out / (path.name[:-len('.html.gz')] + '.txt')).write_text(text, encoding='utf8')


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
