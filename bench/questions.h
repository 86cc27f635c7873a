// The questions unipool-bench answers, one file each (main.cc picks one by
// flag). Each starts its own cluster and peers (peers.h) and prints one
// line per measurement; bench/report.py reads them.
#ifndef UNIPOOL_BENCH_QUESTIONS_H_
#define UNIPOOL_BENCH_QUESTIONS_H_

namespace unipool::bench {

int RunSweep();          // sweep.cc: sizes x batches x threads, vs Redis and memcpy
int RunKvCache();        // kvcache.cc: a KV-cache prefix stored by one engine, hit by another
int RunSingleVsBatch();  // single_vs_batch.cc: 128 Get calls vs one BatchGet, cold and warm
int RunModel();          // model.cc: a safetensors model loaded and read, striped reads

}  // namespace unipool::bench

#endif  // UNIPOOL_BENCH_QUESTIONS_H_
