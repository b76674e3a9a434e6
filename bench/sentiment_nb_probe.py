#!/usr/bin/env python3
"""The features of focus's fitted n-gram branch, in scikit-learn, on the sentiment folds of
`focus cv --folds-out` (docs/RESULTS_TEXT.md, "The n-gram branch fitted to convergence"): word
1-2 grams (bench/text_baselines.py's tokens), NB log-count ratios (alpha 1, binary counts, as
NBSVM), then a binary logistic regression on (a) binary features (NBSVM, C = 1), (b) binary
features L2-normalised, (c) counts / sqrt(the row's count), focus's weighting without TF-IDF, at
several C. Says how far focus's fit is from the same linear model fitted by scikit-learn.

  /usr/bin/python3 bench/sentiment_nb_probe.py runs/cv/folds.tsv
"""
import sys

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

TOKENS = r"(?u)\b\w[\w']*\b|[!?]"


def main():
    rows = [l.rstrip("\n").split("\t", 3) for l in open(sys.argv[1], encoding="utf-8")]
    fold = np.array([int(r[0]) for r in rows])
    y = np.array([int(r[2]) for r in rows])
    texts = [r[3] for r in rows]

    def run(name, feat, C):
        accs = []
        for k in sorted(set(fold)):
            tr, te = np.where(fold != k)[0], np.where(fold == k)[0]
            v = CountVectorizer(ngram_range=(1, 2), token_pattern=TOKENS, lowercase=True)
            A = v.fit_transform([texts[i] for i in tr])
            T = v.transform([texts[i] for i in te])
            b = (A > 0).astype(float)
            p = 1 + np.asarray(b[y[tr] == 1].sum(0)).ravel()
            q = 1 + np.asarray(b[y[tr] == 0].sum(0)).ravel()
            r = sparse.diags(np.log((p / p.sum()) / (q / q.sum())))
            lr = LogisticRegression(C=C, max_iter=5000).fit(feat(A) @ r, y[tr])
            accs.append((lr.predict(feat(T) @ r) == y[te]).mean())
        print(f"{name:30s} C={C:<6} {100 * np.mean(accs):.2f}", flush=True)

    binary = lambda M: (M > 0).astype(float)
    binary_l2 = lambda M: normalize((M > 0).astype(float))
    sqrt_counts = lambda M: sparse.diags(1 / np.sqrt(np.maximum(np.asarray(M.sum(1)).ravel(), 1))) @ M.astype(float)
    run("binary (NBSVM)", binary, 1)
    for C in (3, 10, 30, 100):
        run("binary L2", binary_l2, C)
    for C in (3, 10, 30, 100):
        run("counts / sqrt(count) (focus)", sqrt_counts, C)


if __name__ == "__main__":
    main()
