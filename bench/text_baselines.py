#!/usr/bin/env python3
"""Text classification baselines on focus's own folds: TF-IDF + logistic regression and
multinomial naive Bayes (scikit-learn, Debian python3-sklearn), scored on exactly the folds
`focus cv --folds-out FILE` wrote (fold<TAB>site<TAB>label<TAB>text), printed beside focus's
per-fold accuracies (its cv.json) and the AFINN lexicon figures the sentiment package quotes.

  build/focus cv --data sentiment --folds 10 --out runs/cv --folds-out runs/cv/folds.tsv
  /usr/bin/python3 bench/text_baselines.py runs/cv/folds.tsv --focus runs/cv/cv.json

Each baseline trains on the other folds (the whole of them: no validation split is needed, the
hyper-parameters are fixed below, not tuned on the test fold) and tests on the fold. Text is
lower-cased; TF-IDF on word 1- and 2-grams (sublinear tf), naive Bayes on word counts, NBSVM
(bench/nbsvm.py: binary word 1-2 grams scaled by NB log-count ratios, then LR).
"""
import argparse
import json
import statistics
import sys

from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.naive_bayes import MultinomialNB

from nbsvm import NBLogisticRegression

# Quoted in the README of npm sentiment@5.0.2 ("Rand Accuracy" of AFINN on the UCI sites).
AFINN = {"amazon": 0.726, "imdb": 0.765, "yelp": 0.696}
TOKENS = r"(?u)\b\w[\w']*\b|[!?]"


def read_folds(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                sys.exit(f"{path}:{no}: expected fold<TAB>site<TAB>label<TAB>text")
            rows.append((parts[0], parts[1], int(parts[2]), parts[3]))
    return rows


def models():
    return {
        "tfidf_lr": lambda: (TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
                                             token_pattern=TOKENS, lowercase=True),
                             LogisticRegression(C=10.0, max_iter=2000)),
        "nb": lambda: (CountVectorizer(ngram_range=(1, 2), token_pattern=TOKENS, lowercase=True),
                       MultinomialNB(alpha=0.5)),
        # NBSVM (LR variant): binary word 1-2 grams scaled by NB log-count ratios (bench/nbsvm.py).
        "nbsvm": lambda: (CountVectorizer(ngram_range=(1, 2), token_pattern=TOKENS, lowercase=True,
                                          binary=True),
                          NBLogisticRegression(alpha=1.0, C=1.0)),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folds", help="the TSV of focus cv --folds-out")
    ap.add_argument("--focus", action="append", default=[],
                    help="focus cv's cv.json, printed beside (repeatable; NAME=PATH names the column)")
    ap.add_argument("--json", help="write the table as JSON here")
    args = ap.parse_args()
    rows = read_folds(args.folds)
    folds = sorted({r[0] for r in rows}, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))
    runs = {}  # column name -> {fold: accuracy}
    for spec in args.focus:
        name, path = spec.split("=", 1) if "=" in spec else ("focus", spec)
        with open(path, encoding="utf-8") as f:
            runs[name] = {str(rec["fold"]).replace("fold ", ""): rec["accuracy"]
                          for rec in json.load(f)["folds"]}
    table = {name: [] for name in models()}
    print(f"{'fold':<8} {'test':>5} {'tfidf+LR':>9} {'NB':>7} {'NBSVM':>7}" + "".join(f" {n:>9}" for n in runs))
    for fold in folds:
        train = [r for r in rows if r[0] != fold]
        test = [r for r in rows if r[0] == fold]
        accs = {}
        for name, make in models().items():
            vec, clf = make()
            x = vec.fit_transform([r[3] for r in train])
            clf.fit(x, [r[2] for r in train])
            pred = clf.predict(vec.transform([r[3] for r in test]))
            accs[name] = accuracy_score([r[2] for r in test], pred)
            table[name].append(accs[name])
        # Cross-site folds hold one site each: name the row by it (focus's cv.json does).
        site = test[0][1] if len({r[1] for r in test}) == 1 else ""
        cols = ""
        for focus in runs.values():
            f = focus.get(site) if site in focus else focus.get(fold)
            cols += f" {100 * f:>8.2f}%" if f is not None else " " * 10
        print(f"{site or fold:<8} {len(test):>5} {100 * accs['tfidf_lr']:>8.2f}% {100 * accs['nb']:>6.2f}% {100 * accs['nbsvm']:>6.2f}%"
              + cols
              + (f"   (AFINN {100 * AFINN[site]:.1f}%)" if site in AFINN else ""))
    def summary(v):
        return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)
    line = f"{'mean':<8} {len(rows):>5}"
    for name in table:
        m, s = summary(table[name])
        line += f" {100 * m:>6.2f}±{100 * s:.1f}"
    for focus in runs.values():
        m, s = summary([focus[k] for k in focus])
        line += f" {100 * m:>6.2f}±{100 * s:.1f}"
    print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"folds": folds, **table, "focus": runs}, f, indent=2)


if __name__ == "__main__":
    main()
