// Small helpers missing from Debian's Abseil 20220623 (it has no
// RETURN_IF_ERROR / ASSIGN_OR_RETURN). Written once, here.
#ifndef UNIPOOL_COMMON_STATUS_MACROS_H_
#define UNIPOOL_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define UNIPOOL_CONCAT_INNER_(a, b) a##b
#define UNIPOOL_CONCAT_(a, b) UNIPOOL_CONCAT_INNER_(a, b)

// Returns from the current function with the status of `expr` when it is not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status unipool_status_ = (expr);           \
    if (!unipool_status_.ok()) return unipool_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, StatusOrExpr());` declares and assigns x, or
// returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(UNIPOOL_CONCAT_(unipool_statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#endif  // UNIPOOL_COMMON_STATUS_MACROS_H_
