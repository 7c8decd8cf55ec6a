#include "rmkit/basemodel/linalg.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace rmkit::basemodel {

std::vector<double> Matrix::column(size_t j) const {
  std::vector<double> c(rows);
  for (size_t i = 0; i < rows; ++i) c[i] = (*this)(i, j);
  return c;
}

Matrix Matrix::take_rows(const std::vector<size_t>& idx) const {
  Matrix m(idx.size(), cols);
  for (size_t r = 0; r < idx.size(); ++r)
    std::copy(a.begin() + static_cast<long>(idx[r] * cols), a.begin() + static_cast<long>((idx[r] + 1) * cols),
              m.a.begin() + static_cast<long>(r * cols));
  return m;
}

bool cholesky_solve(Matrix A, std::vector<double> b, std::vector<double>* x, double eps) {
  const size_t n = A.rows;
  double maxdiag = 0;
  for (size_t i = 0; i < n; ++i) maxdiag = std::max(maxdiag, std::fabs(A(i, i)));
  if (n == 0) {
    x->clear();
    return true;
  }
  for (size_t j = 0; j < n; ++j) {
    double s = A(j, j);
    for (size_t k = 0; k < j; ++k) s -= A(j, k) * A(j, k);
    if (!(s > eps * std::max(1.0, maxdiag))) return false;
    const double l = std::sqrt(s);
    A(j, j) = l;
    for (size_t i = j + 1; i < n; ++i) {
      double t = A(i, j);
      for (size_t k = 0; k < j; ++k) t -= A(i, k) * A(j, k);
      A(i, j) = t / l;
    }
  }
  for (size_t i = 0; i < n; ++i) {  // L y = b
    double s = b[i];
    for (size_t k = 0; k < i; ++k) s -= A(i, k) * b[k];
    b[i] = s / A(i, i);
  }
  for (size_t i = n; i-- > 0;) {  // L^T x = y
    double s = b[i];
    for (size_t k = i + 1; k < n; ++k) s -= A(k, i) * b[k];
    b[i] = s / A(i, i);
  }
  *x = std::move(b);
  return true;
}

void symmetric_eigen(const Matrix& S, std::vector<double>* values, Matrix* vectors) {
  const size_t n = S.rows;
  Matrix A = S, V(n, n);
  for (size_t i = 0; i < n; ++i) V(i, i) = 1;
  // cyclic Jacobi rotations until the off-diagonal mass is negligible
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j) (i == j ? diag : off) += A(i, j) * A(i, j);
    if (off <= 1e-30 * std::max(diag, 1e-300)) break;
    for (size_t p = 0; p < n; ++p)
      for (size_t q = p + 1; q < n; ++q) {
        if (A(p, q) == 0) continue;
        const double theta = (A(q, q) - A(p, p)) / (2 * A(p, q));
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (size_t k = 0; k < n; ++k) {  // A <- A J
          const double akp = A(k, p), akq = A(k, q);
          A(k, p) = c * akp - s * akq;
          A(k, q) = s * akp + c * akq;
        }
        for (size_t k = 0; k < n; ++k) {  // A <- J^T A
          const double apk = A(p, k), aqk = A(q, k);
          A(p, k) = c * apk - s * aqk;
          A(q, k) = s * apk + c * aqk;
        }
        for (size_t k = 0; k < n; ++k) {
          const double vkp = V(k, p), vkq = V(k, q);
          V(k, p) = c * vkp - s * vkq;
          V(k, q) = s * vkp + c * vkq;
        }
      }
  }
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return A(a, a) > A(b, b); });
  values->resize(n);
  *vectors = Matrix(n, n);
  for (size_t c = 0; c < n; ++c) {
    (*values)[c] = A(idx[c], idx[c]);
    for (size_t k = 0; k < n; ++k) (*vectors)(k, c) = V(k, idx[c]);
  }
}

PcaResult pca_standardized(const Matrix& X) {
  const size_t n = X.rows, p = X.cols;
  Matrix Z(n, p);
  for (size_t j = 0; j < p; ++j) {
    double m = 0, s = 0;
    for (size_t i = 0; i < n; ++i) m += X(i, j);
    m /= static_cast<double>(std::max<size_t>(n, 1));
    for (size_t i = 0; i < n; ++i) s += (X(i, j) - m) * (X(i, j) - m);
    s = std::sqrt(s / static_cast<double>(std::max<size_t>(n, 1)));
    for (size_t i = 0; i < n; ++i) Z(i, j) = s > 0 ? (X(i, j) - m) / s : 0;
  }
  Matrix C(p, p);
  for (size_t a = 0; a < p; ++a)
    for (size_t b = a; b < p; ++b) {
      double s = 0;
      for (size_t i = 0; i < n; ++i) s += Z(i, a) * Z(i, b);
      C(a, b) = C(b, a) = n > 1 ? s / static_cast<double>(n - 1) : 0;
    }
  PcaResult r;
  Matrix vecs;
  symmetric_eigen(C, &r.explained_variance, &vecs);
  for (double& v : r.explained_variance) v = std::max(0.0, v);
  const double total = std::accumulate(r.explained_variance.begin(), r.explained_variance.end(), 0.0);
  for (double v : r.explained_variance) r.explained_variance_ratio.push_back(total > 0 ? v / total : 0);
  r.components = Matrix(p, p);
  for (size_t c = 0; c < p; ++c) {
    size_t arg = 0;
    for (size_t k = 0; k < p; ++k)
      if (std::fabs(vecs(k, c)) > std::fabs(vecs(arg, c))) arg = k;
    const double sign = vecs(arg, c) < 0 ? -1 : 1;
    for (size_t k = 0; k < p; ++k) r.components(c, k) = sign * vecs(k, c);
  }
  return r;
}

}  // namespace rmkit::basemodel
