#include "unipool/directory/node_health.h"

#include <utility>

namespace unipool {

std::string_view LivenessName(Liveness state) {
  switch (state) {
    case Liveness::kUp:
      return "up";
    case Liveness::kSuspect:
      return "suspect";
    case Liveness::kDown:
      return "down";
  }
  return "?";
}

std::optional<Transition> NodeHealth::MoveTo(Liveness to, std::string reason, absl::Time now) {
  if (to == state_) return std::nullopt;
  Transition t{state_, to, std::move(reason)};
  if (state_ == Liveness::kUp) down_since_ = now;
  state_ = to;
  return t;
}

std::optional<Transition> NodeHealth::Registered(absl::Time now) {
  failed_probe_ = false;
  probe_due_ = false;
  return MoveTo(Liveness::kUp, "registered", now);
}

std::optional<Transition> NodeHealth::Reported(absl::Time now) {
  if (state_ != Liveness::kUp || now - last_probe_ok_ < kReportCooldown) return std::nullopt;
  ++probe_epoch_;
  probe_due_ = true;
  return MoveTo(Liveness::kSuspect, "a client could not reach it; probing", now);
}

std::optional<Transition> NodeHealth::ProbeFinished(uint64_t epoch, bool answered,
                                                    std::string_view why, absl::Time now) {
  if (state_ != Liveness::kSuspect || epoch != probe_epoch_) return std::nullopt;
  if (answered) {
    last_probe_ok_ = now;
    return MoveTo(Liveness::kUp, "it answered the directory's probe", now);
  }
  failed_probe_ = true;
  return MoveTo(Liveness::kDown, "no answer to the directory's probe: " + std::string(why), now);
}

std::optional<Transition> NodeHealth::Heartbeat(bool link_down, absl::Time now) {
  if (link_down) {
    if (state_ == Liveness::kDown) return std::nullopt;
    probe_due_ = false;
    return MoveTo(Liveness::kDown, "its RDMA link is down", now);
  }
  if (state_ != Liveness::kDown) return std::nullopt;
  if (failed_probe_) {
    // It beats but did not answer on its data port: ask that port again.
    failed_probe_ = false;
    ++probe_epoch_;
    probe_due_ = true;
    return MoveTo(Liveness::kSuspect, "heartbeat after a failed probe; probing again", now);
  }
  return MoveTo(Liveness::kUp, "heartbeat again", now);
}

std::optional<Transition> NodeHealth::TimedOut(absl::Duration silence, absl::Time now) {
  if (state_ == Liveness::kDown) return std::nullopt;
  probe_due_ = false;
  return MoveTo(Liveness::kDown, "no heartbeat for " + absl::FormatDuration(silence), now);
}

}  // namespace unipool
