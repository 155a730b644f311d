"""Write examples/paper.json and examples/one_split.json: the paper's sec. VI setting for BERT-base.

Run: python examples/bert_base.py   (no dependencies beyond the standard library)

Derivation (BertConfig() defaults: hidden 768, 12 layers, FFN 3072, vocab 30522, 512 positions):
- parameters: embeddings 23,837,184; each encoder layer 7,087,872 (Q, K, V, O 4 x 590,592,
  FFN 2,362,368 + 2,360,064, two LayerNorms 1,536 each); pooler 590,592; total 109,482,240
  (the paper's 109.48 M).
- FLOPs: the paper's 21.77 GFLOPs for one pass at sequence length 256 is ptflops' MAC count with
  the attention matmuls uncounted. Analytically the linear layers take 256 x (4 x 768^2 +
  2 x 768 x 3072) = 1,811,939,328 MACs per layer (21.74 G for 12); we spread the paper's total
  evenly, 21.77e9 / 12 per layer, so the numbers match the paper's.
- split L: L = 0 runs nothing on the device and uploads the raw input (256 token ids, 16 bits
  each); 1 <= L <= 11 puts the embeddings and layers [0, L) on the device and uploads the hidden
  state 256 x 768 as int8 with one fp32 scale per hidden channel (1,597,440 bits); L = 12 runs
  everything, pooler included, on the device and uploads nothing.
- system: f_max 1 / 4 GHz, c 32 / 128, PUE 1 / 2, phi 5e-29 / 1e-28, B 5 MHz, N0 2e-19 W/Hz,
  P_max 0.5 W, g = K0 (d/d0)^-alpha with K0 -30 dB, alpha 2.8, d 500 m; budgets T0 0.35 s,
  E0 0.015 J (fig. 4(c)); b = 32 bits, h = -2.0 bits per parameter (measured on MiniLM).
"""

from __future__ import annotations

import json
from pathlib import Path

N_LAYERS = 12
SEQ = 256
HIDDEN = 768
EMBED_PARAMS = 30522 * HIDDEN + 512 * HIDDEN + 2 * HIDDEN + 2 * HIDDEN
LAYER_PARAMS = 4 * (HIDDEN * HIDDEN + HIDDEN) + (HIDDEN * 3072 + 3072) + (3072 * HIDDEN + HIDDEN) + 4 * HIDDEN
POOLER_PARAMS = HIDDEN * HIDDEN + HIDDEN
TOTAL_PARAMS = EMBED_PARAMS + N_LAYERS * LAYER_PARAMS + POOLER_PARAMS
LAYER_FLOPS = 21.77e9 / N_LAYERS
RAW_INPUT_BITS = SEQ * 16
HIDDEN_STATE_BITS = SEQ * HIDDEN * 8 + HIDDEN * 32

SYSTEM = {
    "device": {"f_max_hz": 1e9, "flops_per_cycle": 32, "pue": 1.0, "power_coeff": 5e-29},
    "server": {"f_max_hz": 4e9, "flops_per_cycle": 128, "pue": 2.0, "power_coeff": 1e-28},
    "link": {"bandwidth_hz": 5e6, "noise_psd_w_per_hz": 2e-19, "p_max_w": 0.5,
             "distance_m": 500.0, "k0_db": -30.0, "alpha": 2.8},
    "budget": {"latency_s": 0.35, "energy_j": 0.015},
    "bits_per_param": 32,
    "entropy_bits_per_param": -2.0,
}


def split_entry(split: int) -> dict[str, float | int]:
    if split == 0:
        device_params, payload = 0, RAW_INPUT_BITS
    elif split == N_LAYERS:
        device_params, payload = TOTAL_PARAMS, 0
    else:
        device_params, payload = EMBED_PARAMS + split * LAYER_PARAMS, HIDDEN_STATE_BITS
    return {
        "split": split,
        "device_flops": split * LAYER_FLOPS,
        "server_flops": (N_LAYERS - split) * LAYER_FLOPS,
        "device_params": device_params,
        "server_params": TOTAL_PARAMS - device_params,
        "payload_bits": payload,
    }


def main() -> None:
    assert TOTAL_PARAMS == 109_482_240
    here = Path(__file__).parent
    paper = {**SYSTEM, "n_layers": N_LAYERS, "splits": [split_entry(L) for L in range(N_LAYERS + 1)]}
    (here / "paper.json").write_text(json.dumps(paper, indent=2) + "\n")
    one = {**SYSTEM, "budget": {"latency_s": 0.35, "energy_j": 0.03}, "splits": [
        {"split": 4, "device_flops": 7.26e9, "server_flops": 1.451e10,
         "device_params": 5.22e7, "server_params": 5.73e7, "payload_bits": 1.0e6}]}
    one["link"] = {"bandwidth_hz": 5e6, "noise_psd_w_per_hz": 2e-19, "gain": 2.77e-11, "p_max_w": 0.5}
    (here / "one_split.json").write_text(json.dumps(one, indent=2) + "\n")


if __name__ == "__main__":
    main()
