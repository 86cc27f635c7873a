// A lossy link for the UC tests, outside the product: a verbs library that
// is libibverbs except that it damages every Nth RDMA WRITE posted on an
// unreliable-connected (UC) queue pair, as a link that drops packets would.
// The write still completes locally, but only its first half arrives.
//
// How it is used: a test sets UNIPOOL_VERBS_LIBRARY to this module (the
// verbs transport loads whatever library that names) and
// UNIPOOL_FAULTY_VERBS_DAMAGE_EVERY=N before a client connects and before
// nodes start (they inherit the environment). Both ends then lose writes:
// the client's puts and the nodes' writes that serve UC gets. RC queue pairs
// and N = 0 pass everything through.
//
// Every other ibv_* symbol the transport looks up resolves to libibverbs,
// which this module depends on (dlsym on a handle searches its
// dependencies). ibv_open_device is the one defined here: it opens the
// device through libibverbs and swaps the context's post_send (which the
// inline ibv_post_send calls) for one that damages writes.
//
// Thread safety: post_send may be called from any thread (an atomic count).
#include <dlfcn.h>
#include <infiniband/verbs.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

using PostSend = int (*)(ibv_qp*, ibv_send_wr*, ibv_send_wr**);

std::atomic<uint64_t> uc_writes{0};
std::atomic<uint64_t> damage_every{0};
// The provider's post_send (one provider per process here).
std::atomic<PostSend> real_post_send{nullptr};

bool IsWrite(const ibv_send_wr& wr) {
  return wr.opcode == IBV_WR_RDMA_WRITE || wr.opcode == IBV_WR_RDMA_WRITE_WITH_IMM;
}

// Posts a copy of the chain in which every Nth write carries half its bytes.
int DamagingPostSend(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad_wr) {
  PostSend post = real_post_send.load();
  uint64_t every = damage_every.load();
  if (qp->qp_type != IBV_QPT_UC || every == 0) return post(qp, wr, bad_wr);
  std::vector<ibv_send_wr*> originals;
  for (ibv_send_wr* w = wr; w != nullptr; w = w->next) originals.push_back(w);
  std::vector<ibv_send_wr> copies(originals.size());
  std::vector<std::vector<ibv_sge>> sges(originals.size());
  for (size_t i = 0; i < originals.size(); ++i) {
    copies[i] = *originals[i];
    sges[i].assign(originals[i]->sg_list, originals[i]->sg_list + originals[i]->num_sge);
    copies[i].sg_list = sges[i].data();
    copies[i].next = i + 1 < copies.size() ? &copies[i + 1] : nullptr;
    if (!IsWrite(copies[i]) || sges[i].empty() || sges[i].back().length < 2) continue;
    if ((uc_writes.fetch_add(1) + 1) % every == 0) sges[i].back().length /= 2;
  }
  ibv_send_wr* bad = nullptr;
  int rc = post(qp, copies.data(), &bad);
  if (rc != 0 && bad != nullptr && bad_wr != nullptr) *bad_wr = originals[bad - copies.data()];
  return rc;
}

}  // namespace

extern "C" ibv_context* ibv_open_device(ibv_device* device) {
  // libibverbs is loaded already (this module depends on it).
  static void* libibverbs = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_NOLOAD);
  static auto* real_open =
      libibverbs == nullptr
          ? nullptr
          : reinterpret_cast<ibv_context* (*)(ibv_device*)>(dlsym(libibverbs, "ibv_open_device"));
  if (real_open == nullptr) return nullptr;
  ibv_context* context = real_open(device);
  if (context == nullptr) return nullptr;
  const char* every = std::getenv("UNIPOOL_FAULTY_VERBS_DAMAGE_EVERY");
  damage_every = every != nullptr ? std::strtoull(every, nullptr, 10) : 0;
  PostSend expected = nullptr;
  real_post_send.compare_exchange_strong(expected, context->ops.post_send);
  context->ops.post_send = DamagingPostSend;
  static std::atomic<bool> said{false};
  if (damage_every > 0 && !said.exchange(true)) {  // once per process
    std::fprintf(stderr, "faulty verbs (test library): damaging every %llu-th UC write\n",
                 static_cast<unsigned long long>(damage_every.load()));
  }
  return context;
}
