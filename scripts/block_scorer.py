#!/usr/bin/env python3
"""The learned-block-scorer experiment of issue 13 (BENCHMARKS.md; measured, not kept).

Labels the text runs `examples/block_runs.rs` dumps (a run is content when half of its 4-gram
shingles are in the page's ground truth; a run of fewer than four words when its words appear in
the truth), trains logistic regression and gradient-boosted trees on the runs of the dev halves of
the host split, and scores the kept runs' text per corpus, part and test half with
`../shared/tools/score_extraction.py`'s metric, beside the extractor's own choice of runs and the
ceiling of perfect labels.

Usage (numpy and scikit-learn in a venv):
    cargo run --release --example block_runs -- ../shared/corpus/extraction-dev/html/*.gz \\
        ../shared/corpus/extraction-dev2/html/*.gz > /tmp/runs.jsonl
    /tmp/ml/bin/python scripts/block_scorer.py /tmp/runs.jsonl
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

SHARED = Path(__file__).resolve().parent.parent.parent / 'shared'
sys.path.insert(0, str(SHARED / 'tools'))
import score_extraction as scorer  # noqa: E402

COLUMNS = [('dev', 'all'), ('dev2', 'dev'), ('dev2', 'test'), ('wcxb', 'test'), ('dragnet', 'test'), ('readability', 'test')]


def load(runs_path):
    dev, dev_urls = scorer.load_truth(SHARED / 'corpus' / 'extraction-dev' / 'ground-truth.json')
    dev2, dev2_urls = scorer.load_truth(SHARED / 'corpus' / 'extraction-dev2' / 'ground-truth.json')
    truth, urls = {**dev, **dev2}, {**dev_urls, **dev2_urls}
    pages, features, labels, owner, texts = [], [], [], [], []
    for line in open(runs_path, encoding='utf8'):
        page = json.loads(line)
        key = page['id']
        part = 'dev' if key in dev else key.split('-')[0]
        half = scorer.split_of(urls[key]) if urls[key] else 'test'
        shingles = set(scorer.shingle_counts(truth[key]).keys())
        words = ' '.join(scorer.tokens(truth[key])).lower()
        for run in page['runs']:
            toks = scorer.tokens(run['t'])
            if len(toks) >= 4:
                grams = [tuple(toks[i:i + 4]) for i in range(len(toks) - 3)]
                label = sum(g in shingles for g in grams) / len(grams) >= 0.5
            else:
                label = bool(toks) and ' '.join(toks).lower() in words
            features.append(run['f'])
            labels.append(int(label))
            owner.append(len(pages))
            texts.append(run['t'])
        pages.append((key, part, half))
    return truth, pages, np.array(features, dtype=np.float32), np.array(labels), np.array(owner), texts


def row(name, keep, truth, pages, owner, texts):
    kept = defaultdict(list)
    for i in np.nonzero(keep)[0]:
        kept[owner[i]].append(texts[i])
    counts = defaultdict(list)
    for index, (key, part, half) in enumerate(pages):
        c = scorer.page_counts(truth[key], '\n'.join(kept[index]))
        counts[part, 'all'].append(c)
        counts[part, half].append(c)
        if part != 'dev':
            counts['dev2', half].append(c)
    cells = ' | '.join('%.3f' % scorer.aggregate(counts[column])['f1'] for column in COLUMNS)
    print(f'| {name} | {cells} |')


def main():
    truth, pages, x, y, owner, texts = load(sys.argv[1])
    train = np.array([half == 'dev' for _, _, half in pages])[owner]
    print(f'{len(y)} runs, {train.sum()} in the dev halves (training), {y.mean():.3f} content')
    print('| kept runs | ' + ' | '.join(f'{p} {h}' for p, h in COLUMNS) + ' |')
    show = lambda name, keep: row(name, keep, truth, pages, owner, texts)  # noqa: E731
    heuristic = (x[:, 0] == 1) & (x[:, 1] == 0)
    show("the heuristic's (chosen roots minus furniture)", heuristic)
    show('perfect run labels', y == 1)
    scale = StandardScaler().fit(x[train])
    linear = LogisticRegression(max_iter=2000).fit(scale.transform(x[train]), y[train])
    show('logistic regression, p >= 0.6', linear.predict_proba(scale.transform(x))[:, 1] >= 0.6)
    is_dev = np.array([part == 'dev' for _, part, _ in pages])[owner]
    for name, params, weight in [
        ('trees (300 x 31 leaves), p >= 0.5', dict(max_iter=300, max_leaf_nodes=31), 1.0),
        ('trees, regularized (200 x 15, >= 500 per leaf)',
         dict(max_iter=200, max_leaf_nodes=15, min_samples_leaf=500, l2_regularization=1.0), 1.0),
        ('trees with extraction-dev weighted x15',
         dict(max_iter=200, max_leaf_nodes=15, min_samples_leaf=500, l2_regularization=1.0), 15.0),
    ]:
        trees = HistGradientBoostingClassifier(random_state=0, **params)
        trees.fit(x[train], y[train], sample_weight=np.where(is_dev, weight, 1.0)[train])
        p = trees.predict_proba(x)[:, 1]
        show(name, p >= 0.5)
        if weight == 1.0 and params['max_iter'] == 300:
            show('heuristic, runs dropped where trees say p < 0.3', heuristic & (p >= 0.3))
            show('heuristic, runs added where trees say p >= 0.7', heuristic | (p >= 0.7))


if __name__ == '__main__':
    main()
