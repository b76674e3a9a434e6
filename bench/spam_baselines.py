#!/usr/bin/env python3
"""Spam baselines on the splits `focus text-import spam --out DIR` wrote: TF-IDF + logistic
regression and multinomial naive Bayes (scikit-learn, Debian python3-sklearn) on exactly the same
extracted texts (DIR/<split>/{train,valid,test}.tsv, label<TAB>text), printed beside focus's
figures (the test_metrics.json of `focus train --task text` on the same split).

  build/focus text-import spam --out runs/spam
  build/focus train --task text --train runs/spam/random/train.tsv --valid runs/spam/random/valid.tsv \\
      --test runs/spam/random/test.tsv --out runs/spam-random ...
  /usr/bin/python3 bench/spam_baselines.py runs/spam --focus random=runs/spam-random/test_metrics.json

The baselines train on train + valid (their hyper-parameters are fixed below, so they need no
validation rows; focus uses valid for early stopping and its temperature) and score test.
Metrics: accuracy, and precision / recall / F1 of the spam class.
"""
import argparse
import json
import os
import sys

from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.naive_bayes import MultinomialNB

TOKENS = r"(?u)\b\w[\w'$]*\b|[!?$%]"


def read_tsv(path):
    labels, texts = [], []
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            label, sep, text = line.rstrip("\n").partition("\t")
            if not sep or label not in ("ham", "spam"):
                sys.exit(f"{path}:{no}: expected ham|spam<TAB>text")
            labels.append(int(label == "spam"))
            texts.append(text)
    return labels, texts


def models():
    return {
        "TF-IDF + LR": lambda: (TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2,
                                                token_pattern=TOKENS, lowercase=True),
                                LogisticRegression(C=10.0, max_iter=2000)),
        "naive Bayes": lambda: (CountVectorizer(ngram_range=(1, 2), min_df=2, token_pattern=TOKENS,
                                                lowercase=True),
                                MultinomialNB(alpha=0.1)),
    }


def scores(y, pred):
    p, r, f, _ = precision_recall_fscore_support(y, pred, pos_label=1, average="binary", zero_division=0)
    return {"accuracy": accuracy_score(y, pred), "spam_precision": p, "spam_recall": r, "spam_f1": f,
            "test": len(y)}


def focus_scores(path):
    with open(path, encoding="utf-8") as f:
        j = json.load(f)
    spam = next(c for c in j["per_class"] if c["class"] == "spam")
    return {"accuracy": j["accuracy"], "spam_precision": spam["precision"], "spam_recall": spam["recall"],
            "spam_f1": spam["f1"], "test": j["total"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="the folder of focus text-import spam")
    ap.add_argument("--splits", default="random,time")
    ap.add_argument("--focus", action="append", default=[], metavar="SPLIT=FILE",
                    help="focus's test_metrics.json for a split (repeatable)")
    ap.add_argument("--json", help="write every figure as JSON here")
    args = ap.parse_args()
    focus = dict(s.split("=", 1) for s in args.focus)
    out = {}
    print(f"{'split':<7} {'method':<17} {'test':>5} {'accuracy':>9} {'spam P':>7} {'spam R':>7} {'spam F1':>8}")
    for split in args.splits.split(","):
        d = os.path.join(args.dir, split)
        ytr, xtr = read_tsv(os.path.join(d, "train.tsv"))
        yva, xva = read_tsv(os.path.join(d, "valid.tsv"))
        yte, xte = read_tsv(os.path.join(d, "test.tsv"))
        out[split] = {}
        for name, make in models().items():
            vec, clf = make()
            clf.fit(vec.fit_transform(xtr + xva), ytr + yva)
            out[split][name] = scores(yte, clf.predict(vec.transform(xte)))
        if split in focus:
            out[split]["focus text-transformer"] = focus_scores(focus[split])
        for name, s in out[split].items():
            print(f"{split:<7} {name:<17} {s['test']:>5} {100 * s['accuracy']:>8.2f}% {100 * s['spam_precision']:>6.2f}%"
                  f" {100 * s['spam_recall']:>6.2f}% {100 * s['spam_f1']:>7.2f}%")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
