#!/usr/bin/env python3
"""Independent NumPy reference for rmkit's bandits (src/rmkit/select/bandit), used by
tests/select/bandit/test_bandit_reference.cpp.

Replays the same stream as `rmkit bandit replay` (line t of CONTEXTS: a JSON array, round t's
context; line t of REWARDS: a JSON array with every arm's raw reward) and prints the same JSON line
per round: {"round", "arm", "scores", "reward", "normalized_reward"}.

Written from the algorithms' definitions, not from the C++ code:
  linucb    A_k = lambda I, b_k = 0; theta_k = inv(A_k) b_k with np.linalg.inv of A_k every round
            (no Sherman-Morrison); score_k = c.theta_k + alpha sqrt(c^T inv(A_k) c); argmax, ties to
            the lowest index; A_j += c c^T, b_j += r c.
  thompson  score_k = c.theta_k + v sqrt(c^T inv(A_k) c) z_k, z_k the next SplitMix64 normals in arm
            order (c.theta~ for theta~ ~ N(theta, v^2 inv(A)) has exactly this distribution).
  exp3      log-weights; p = (1-gamma) softmax(lw) + gamma/K; u = uniform(); first arm with u < cumsum;
            lw_j += gamma (r / p_j) / K.
The reward normaliser uses np.percentile (linear). Random numbers: SplitMix64 -> uniform double ->
Box-Muller (cosine branch), as documented in src/rmkit/select/bandit/rng.h.
"""
import argparse
import json
import math
import sys

import numpy as np

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53

    def normal(self):
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


class Normalizer:
    def __init__(self, low, high, min_history, fallback):
        self.low, self.high, self.min_history, self.fallback = low, high, min_history, fallback
        self.history = []

    def __call__(self, r):
        self.history.append(r)
        if len(self.history) < self.min_history:
            return self.fallback
        lo, hi = np.percentile(np.array(self.history), [self.low, self.high])
        if not hi > lo:
            return self.fallback
        return float(min(1.0, max(0.0, (r - lo) / (hi - lo))))


class Ridge:
    def __init__(self, K, d, lam):
        self.A = [lam * np.eye(d) for _ in range(K)]
        self.b = [np.zeros(d) for _ in range(K)]

    def mean_and_width(self, k, c):
        a_inv = np.linalg.inv(self.A[k])
        theta = a_inv @ self.b[k]
        return float(c @ theta), math.sqrt(max(0.0, float(c @ a_inv @ c)))

    def update(self, k, c, r):
        self.A[k] += np.outer(c, c)
        self.b[k] += r * c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--algo", required=True, choices=["linucb", "thompson", "exp3"])
    ap.add_argument("--contexts")
    ap.add_argument("--rewards", required=True)
    ap.add_argument("--raw-rewards", action="store_true")
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--lambda", dest="lam", type=float, default=1.0)
    ap.add_argument("--v", type=float, default=1.0)
    ap.add_argument("--gamma", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--norm-low", type=float, default=20)
    ap.add_argument("--norm-high", type=float, default=80)
    ap.add_argument("--norm-min-history", type=int, default=20)
    ap.add_argument("--norm-fallback", type=float, default=0.5)
    ap.add_argument("--min-pulls-every", type=int, default=0)
    a = ap.parse_args()

    rewards = [json.loads(line) for line in open(a.rewards) if line.strip()]
    contexts = [np.array(json.loads(line), dtype=np.float64) for line in open(a.contexts) if line.strip()] \
        if a.contexts else [None] * len(rewards)
    K = len(rewards[0])
    d = len(contexts[0]) if a.contexts else 0
    rng = SplitMix64(a.seed)
    norm = Normalizer(a.norm_low, a.norm_high, a.norm_min_history, a.norm_fallback)
    ridge = Ridge(K, d, a.lam) if a.algo in ("linucb", "thompson") else None
    log_w = [0.0] * K
    last_pull = [-1] * K

    def exp3_probs():
        m = max(log_w)
        e = [math.exp(x - m) for x in log_w]
        s = sum(e)
        return [(1.0 - a.gamma) * x / s + a.gamma / K for x in e]

    for t, (c, row) in enumerate(zip(contexts, rewards)):
        if a.algo == "exp3":
            scores = exp3_probs()
            u = rng.uniform()
            cum, arm = 0.0, K - 1
            for i, p in enumerate(scores):
                cum += p
                if u < cum:
                    arm = i
                    break
        else:
            scores = []
            for k in range(K):
                mean, width = ridge.mean_and_width(k, c)
                bonus = a.alpha * width if a.algo == "linucb" else a.v * width * rng.normal()
                scores.append(mean + bonus)
            arm = int(np.argmax(scores))
        if a.min_pulls_every > 0:
            oldest = int(np.argmin(last_pull))
            if t - last_pull[oldest] > a.min_pulls_every:
                arm = oldest
        last_pull[arm] = t
        r = float(row[arm])
        nr = r if a.raw_rewards else norm(r)
        if a.algo == "exp3":
            p = exp3_probs()[arm]
            log_w[arm] += a.gamma * (nr / p) / K
        else:
            ridge.update(arm, c, nr)
        print(json.dumps({"round": t + 1, "arm": arm, "scores": scores, "reward": r, "normalized_reward": nr}))


if __name__ == "__main__":
    sys.exit(main())
