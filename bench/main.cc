// unipool-bench: how fast does unipool move pages, per transport, next to
// what a user would otherwise pick (Redis) and the physical ceiling of the
// same-host path (memcpy), on the same machine in the same run? Three
// questions, one file each:
//   (default)          sweep.cc            sizes x pages per call x threads
//   --kvcache          kvcache.cc          a KV-cache prefix hit between two engines
//   --single-vs-batch  single_vs_batch.cc  128 Get calls against one BatchGet
//   --model            model.cc            a safetensors model loaded and read back,
//                                          against disk and memcpy; striped reads
// Throughput is in perftest's unit (MB/s = 2^20 bytes/s) and also GB/s
// (1e9), so figures from one machine compare as ratios. bench/run.sh runs
// the first three and bench/report.py turns the lines into
// bench/results/report.md.
#include "absl/flags/flag.h"
#include "questions.h"
#include "unipool/common/process.h"

ABSL_FLAG(bool, kvcache, false, "run the KV-cache prefix-hit mode instead of the sweep");
ABSL_FLAG(bool, model, false,
          "run the model-weights mode (load and read a safetensors model, striped reads)");
ABSL_FLAG(bool, single_vs_batch, false,
          "run the single-gets-versus-one-batch comparison instead of the sweep");

int main(int argc, char** argv) {
  unipool::ParseFlags(argc, argv,
                      "unipool-bench [--transport tcp|shm|rc|uc|auto|all] [--sizes 64KiB,2MiB] "
                      "[--batch 16 | --batches 1,16,128] [--threads 1,2] [--total 64MiB] "
                      "[--peers redis,memcpy,checksum] [--lease 2s] "
                      "[--kvcache | --single-vs-batch | --model [--quick]]");
  if (absl::GetFlag(FLAGS_kvcache)) return unipool::bench::RunKvCache();
  if (absl::GetFlag(FLAGS_single_vs_batch)) return unipool::bench::RunSingleVsBatch();
  if (absl::GetFlag(FLAGS_model)) return unipool::bench::RunModel();
  return unipool::bench::RunSweep();
}
