"""NBSVM with a logistic-regression classifier (Wang & Manning 2012, "Baselines and Bigrams"):
binary n-gram features scaled by their naive-Bayes log-count ratio r = log((p / |p|_1) / (q / |q|_1)),
p = alpha + the positive rows' feature counts, q = alpha + the negative rows', then an L2 logistic
regression on the scaled features. Two classes only. Used by bench/text_baselines.py and
bench/split_baselines.py as the strongest bag-of-n-grams baseline (no interpolation with the NB
weights, beta = 1: the LR variant needs none); C = 1 and alpha = 1 are the paper's defaults, fixed,
not tuned on any test split.
"""
import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression


class NBLogisticRegression:
    def __init__(self, alpha=1.0, C=1.0):
        self.alpha, self.C = alpha, C

    def fit(self, x, y):
        y = np.asarray(y)
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(f"NBSVM: two classes only, got {len(classes)}")
        x = (x > 0).astype(np.float64)
        p = self.alpha + np.asarray(x[y == classes[1]].sum(0)).ravel()
        q = self.alpha + np.asarray(x[y == classes[0]].sum(0)).ravel()
        self.r_ = sparse.diags(np.log((p / p.sum()) / (q / q.sum())))
        self.lr_ = LogisticRegression(C=self.C, max_iter=3000).fit(x @ self.r_, y)
        return self

    def predict(self, x):
        return self.lr_.predict((x > 0).astype(np.float64) @ self.r_)
