#!/usr/bin/python3
"""Writes a small llama-architecture GGUF with random F32 weights.

  make_model.py GGUF_PY_DIR OUT.gguf [--layers N] [--width W] [--heads H]
                [--kv-heads K] [--vocab V] [--ctx C] [--seed S] [--f16]

GGUF_PY_DIR is llama.cpp's gguf-py folder (scripts/fetch-llama.sh keeps it in
its cache). The vocabulary is SentencePiece-shaped (<unk>, <s>, </s>, 256 byte
tokens, then plain pieces); callers feed token ids, so its contents do not
matter. Different seeds give different files of the same shape, which the
prefix cache must tell apart.
"""
import argparse
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf_py")
    parser.add_argument("out")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--f16", action="store_true", help="F16 matrices (half the file)")
    args = parser.parse_args()
    sys.path.insert(0, args.gguf_py)
    import numpy as np
    import gguf

    if args.vocab < 259 + 1 or args.width % args.heads or args.heads % args.kv_heads:
        parser.error("need vocab > 259, width divisible by heads, heads by kv-heads")
    rng = np.random.default_rng(args.seed)
    head_dim = args.width // args.heads
    ff = args.width * 2

    def weight(*shape):
        # Small enough that activations stay finite through every layer.
        w = rng.standard_normal(shape, dtype=np.float32) / np.float32(np.sqrt(shape[-1]))
        return w.astype(np.float16) if args.f16 else w

    w = gguf.GGUFWriter(args.out, "llama")
    w.add_context_length(args.ctx)
    w.add_embedding_length(args.width)
    w.add_block_count(args.layers)
    w.add_feed_forward_length(ff)
    w.add_head_count(args.heads)
    w.add_head_count_kv(args.kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if args.f16 else gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(args.vocab)

    tokens = [b"<unk>", b"<s>", b"</s>"] + [b"<0x%02X>" % i for i in range(256)]
    tokens += [b"p%d" % i for i in range(args.vocab - len(tokens))]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256
    types += [gguf.TokenType.NORMAL] * (args.vocab - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_scores([0.0] * args.vocab)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    kv_width = head_dim * args.kv_heads
    w.add_tensor("token_embd.weight", weight(args.vocab, args.width))
    w.add_tensor("output_norm.weight", np.ones(args.width, dtype=np.float32))
    w.add_tensor("output.weight", weight(args.vocab, args.width))
    for i in range(args.layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(args.width, dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", weight(args.width, args.width))
        w.add_tensor(f"blk.{i}.attn_k.weight", weight(kv_width, args.width))
        w.add_tensor(f"blk.{i}.attn_v.weight", weight(kv_width, args.width))
        w.add_tensor(f"blk.{i}.attn_output.weight", weight(args.width, args.width))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(args.width, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", weight(ff, args.width))
        w.add_tensor(f"blk.{i}.ffn_up.weight", weight(ff, args.width))
        w.add_tensor(f"blk.{i}.ffn_down.weight", weight(args.width, ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
