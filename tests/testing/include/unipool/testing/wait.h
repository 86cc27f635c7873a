// Waiting in tests: for a condition, never for a fixed time, with a bound
// generous enough for a loaded machine.
#ifndef UNIPOOL_TESTING_WAIT_H_
#define UNIPOOL_TESTING_WAIT_H_

#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"

namespace unipool::testing {

// Polls `done` every `every` until it holds or `bound` passed; returns
// whether it held (checked once more at the bound).
bool WaitUntil(absl::FunctionRef<bool()> done, absl::Duration bound = absl::Seconds(60),
               absl::Duration every = absl::Milliseconds(20));

// Waits (up to `bound`) until the file at `path` (a process's log) contains
// `text`; returns whether it did.
bool WaitForFileText(const std::string& path, std::string_view text,
                     absl::Duration bound = absl::Seconds(30));

}  // namespace unipool::testing

#endif  // UNIPOOL_TESTING_WAIT_H_
