// Small dense linear algebra for the selector (torch-free): a row-major matrix, Cholesky solves,
// the Jacobi eigen-decomposition of a symmetric matrix, and PCA of a standardised feature matrix.
#pragma once
#include <cstddef>
#include <vector>

namespace rmkit::basemodel {

struct Matrix {
  size_t rows = 0, cols = 0;
  std::vector<double> a;
  Matrix() = default;
  Matrix(size_t r, size_t c, double v = 0) : rows(r), cols(c), a(r * c, v) {}
  double& operator()(size_t i, size_t j) { return a[i * cols + j]; }
  double operator()(size_t i, size_t j) const { return a[i * cols + j]; }
  std::vector<double> column(size_t j) const;
  // The rows listed in `idx`, in that order.
  Matrix take_rows(const std::vector<size_t>& idx) const;
};

// Solves A x = b for symmetric positive-definite A (n x n); false when A is not numerically
// positive definite (a pivot <= eps * max diagonal).
bool cholesky_solve(Matrix A, std::vector<double> b, std::vector<double>* x, double eps = 1e-13);

// Eigenvalues (descending) and eigenvectors (columns of *vectors, same order) of symmetric S.
void symmetric_eigen(const Matrix& S, std::vector<double>* values, Matrix* vectors);

struct PcaResult {
  std::vector<double> explained_variance;        // eigenvalues of the covariance (ddof = 1)
  std::vector<double> explained_variance_ratio;  // each / their sum
  Matrix components;                             // [component][feature], sign: largest |loading| > 0
};
// PCA of X (rows = models) after z-scoring each column with its mean and population standard
// deviation (constant columns become 0). Covariance with ddof = 1, as scikit-learn's PCA.
PcaResult pca_standardized(const Matrix& X);

}  // namespace rmkit::basemodel
