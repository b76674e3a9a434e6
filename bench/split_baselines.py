#!/usr/bin/env python3
"""Binary text baselines on the splits `focus text-import spam|topic --out DIR` wrote: TF-IDF +
logistic regression, multinomial naive Bayes and NBSVM (bench/nbsvm.py; scikit-learn, Debian
python3-sklearn) on exactly
the same texts (DIR/<split>/{train,valid,test}.tsv, label<TAB>text), printed beside focus's
figures (the test_metrics.json of `focus train --task text` on the same split). The negative
label is "ham" or "other"; the positive one (spam, corn, grain) is the other label.

  build/focus text-import spam --out runs/spam
  build/focus train --task text --train runs/spam/random/train.tsv --valid runs/spam/random/valid.tsv \\
      --test runs/spam/random/test.tsv --out runs/spam-random ...
  /usr/bin/python3 bench/split_baselines.py runs/spam --focus random=runs/spam-random/test_metrics.json
  build/focus text-import topic --out runs/topic   # then train on runs/topic/{corn,grain}/...
  /usr/bin/python3 bench/split_baselines.py runs/topic --splits corn,grain --focus corn=...

The baselines train on train + valid (their hyper-parameters are fixed below, so they need no
validation rows; focus uses valid for early stopping and its temperature) and score test.
Metrics: accuracy, and precision / recall / F1 of the positive class.
"""
import argparse
import json
import os
import sys

from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.naive_bayes import MultinomialNB

from nbsvm import NBLogisticRegression

TOKENS = r"(?u)\b\w[\w'$]*\b|[!?$%]"


NEGATIVE = ("ham", "other")


def read_tsv(path, positive):
    """Labels as 0/1 (1 = `positive`, 0 = a NEGATIVE label) and texts; `positive` is a one-item list
    filled by the first non-negative label seen."""
    labels, texts = [], []
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            label, sep, text = line.rstrip("\n").partition("\t")
            if not sep or not label:
                sys.exit(f"{path}:{no}: expected label<TAB>text")
            if label not in NEGATIVE and not positive:
                positive.append(label)
            if label not in NEGATIVE and label != positive[0]:
                sys.exit(f"{path}:{no}: a third label {label!r} (negative: ham/other, positive: {positive[0]!r})")
            labels.append(int(label not in NEGATIVE))
            texts.append(text)
    return labels, texts


def models():
    return {
        "TF-IDF + LR": lambda: (TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2,
                                                token_pattern=TOKENS, lowercase=True),
                                LogisticRegression(C=10.0, max_iter=2000)),
        # The same with classes weighted inversely to their frequency (the topics are rare: 3-7%).
        "TF-IDF + LR balanced": lambda: (TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2,
                                                         token_pattern=TOKENS, lowercase=True),
                                         LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced")),
        "naive Bayes": lambda: (CountVectorizer(ngram_range=(1, 2), min_df=2, token_pattern=TOKENS,
                                                lowercase=True),
                                MultinomialNB(alpha=0.1)),
        # Character n-grams within words (2-5, case kept, sublinear TF-IDF) + a linear SVM (C=1):
        # the strongest spam pipeline of bench/spam_probe.py's inner cross-validation.
        "char_wb TF-IDF + SVM": lambda: (TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5),
                                                         sublinear_tf=True, lowercase=False),
                                         LinearSVC(C=1.0)),
        # NBSVM (LR variant, bench/nbsvm.py): binary word 1-2 grams scaled by NB log-count ratios.
        "NBSVM": lambda: (CountVectorizer(ngram_range=(1, 2), min_df=2, token_pattern=TOKENS,
                                          lowercase=True, binary=True),
                          NBLogisticRegression(alpha=1.0, C=1.0)),
    }


def scores(y, pred):
    p, r, f, _ = precision_recall_fscore_support(y, pred, pos_label=1, average="binary", zero_division=0)
    return {"accuracy": accuracy_score(y, pred), "precision": p, "recall": r, "f1": f, "test": len(y)}


def focus_scores(path, positive):
    with open(path, encoding="utf-8") as f:
        j = json.load(f)
    c = next(c for c in j["per_class"] if c["class"] == positive)
    return {"accuracy": j["accuracy"], "precision": c["precision"], "recall": c["recall"], "f1": c["f1"],
            "test": j["total"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="the folder of focus text-import spam")
    ap.add_argument("--splits", default="random,time")
    ap.add_argument("--focus", action="append", default=[], metavar="SPLIT[:LABEL]=FILE",
                    help="focus's test_metrics.json for a split, shown as 'focus LABEL' "
                         "(default: text-transformer); repeatable, several per split")
    ap.add_argument("--json", help="write every figure as JSON here")
    args = ap.parse_args()
    focus = []  # (split, label, file)
    for s in args.focus:
        key, path = s.split("=", 1)
        split, _, label = key.partition(":")
        focus.append((split, label or "text-transformer", path))
    out = {}
    print(f"{'split':<7} {'method':<30} {'test':>5} {'accuracy':>9} {'pos P':>7} {'pos R':>7} {'pos F1':>8}  positive")
    for split in args.splits.split(","):
        d = os.path.join(args.dir, split)
        positive = []
        ytr, xtr = read_tsv(os.path.join(d, "train.tsv"), positive)
        yva, xva = read_tsv(os.path.join(d, "valid.tsv"), positive)
        yte, xte = read_tsv(os.path.join(d, "test.tsv"), positive)
        out[split] = {}
        for name, make in models().items():
            vec, clf = make()
            clf.fit(vec.fit_transform(xtr + xva), ytr + yva)
            out[split][name] = scores(yte, clf.predict(vec.transform(xte)))
        for fsplit, label, path in focus:
            if fsplit == split:
                out[split]["focus " + label] = focus_scores(path, positive[0])
        for name, s in out[split].items():
            print(f"{split:<7} {name:<30} {s['test']:>5} {100 * s['accuracy']:>8.2f}% {100 * s['precision']:>6.2f}%"
                  f" {100 * s['recall']:>6.2f}% {100 * s['f1']:>7.2f}%  {positive[0]}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
