#!/usr/bin/env bash
# The official-size planning figures on one GPU, in one short run (issue 13):
#   the CUDA tests, then planning_speed.py at V-JEPA 2-AC size (ViT-g encoder, 16 x 16 patches, 24 x 1024
#   predictor; random weights, random frames) with CEM at 300 samples x 10 iterations (compiled and eager
#   side by side) and 800 x 10 (compiled), horizon 2, bf16 (auto on a GPU).
#
#   OUT=runs/official_size_gpu bash benchmarks/official_size_gpu.sh [tests] [300] [800]   # default: all three
#
# Needs torch with CUDA, hydra-core and omegaconf; not MuJoCo (--synthetic-context). Each step has its own
# time limit, so a slow compile cannot take the later figures with it (on an H200 the compile for one batch
# shape took ~110 s, and 235 s was too short for either run: budget ~14 minutes in all). Logs go to $OUT.
set -u
OUT=${OUT:-runs/official_size_gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"

steps=" ${*:-tests 300 800} "
[[ $steps == *" tests "* ]] && timeout "${TEST_S:-150}" python3 -m pytest -q -p no:cacheprovider tests/worldmodel/test_cuda.py 2>&1 | tee "$OUT/test_cuda.log"

speed=(python3 benchmarks/planning_speed.py --official-size --synthetic-context --repeats 3)
cfg=(world_model.device=cuda planner=cem planner.iterations=10 planner.horizon=2)  # after "--": --compile takes 1+ values
[[ $steps == *" 300 "* ]] && timeout "${RUN_S:-360}" "${speed[@]}" --compile true false -- "${cfg[@]}" planner.num_samples=300 2>&1 | tee "$OUT/official_300x10.log"
[[ $steps == *" 800 "* ]] && timeout "${RUN_S:-360}" "${speed[@]}" --compile true -- "${cfg[@]}" planner.num_samples=800 2>&1 | tee "$OUT/official_800x10.log"
