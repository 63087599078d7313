#!/bin/bash
# LeNet5 on CIFAR-10 on a multi-host Cloud TPU VM slice (e.g. v5litepod-16).
# The same command runs on every worker; JAX detects the slice and joins the
# hosts. The workdir and data must be on a POSIX filesystem that every worker
# mounts at the same path (e.g. Filestore/NFS): the workdir lock and
# metrics.jsonl are ordinary files.
#
#   TPU=my-tpu ZONE=us-west4-a SHARED=/mnt/shared bash scripts/cluster/tpu_vm_lenet5.sh
set -euo pipefail
: "${TPU:?name of the TPU VM}" "${ZONE:?its zone}" "${SHARED:?shared mount on every worker}"

# Copy this checkout (without virtual environments) to every worker.
git archive --format=tar.gz -o /tmp/actlab.tar.gz HEAD
gcloud compute tpus tpu-vm scp /tmp/actlab.tar.gz "$TPU":~/ --zone="$ZONE" --worker=all
# The remote shell reads --command again: values in it are quoted for it (%q).
printf -v shared_q '%q' "$SHARED"
gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" --worker=all --command="
  set -e
  mkdir -p ~/actlab && tar -xzf ~/actlab.tar.gz -C ~/actlab && cd ~/actlab
  python3 -m venv ~/venv && . ~/venv/bin/activate
  pip install -q -e '.[tpu]'
  python experiments/main.py \
    --config=experiments/configs/lenet5_cifar10.py \
    --config.data.data_dir=$shared_q/tfds \
    --config.batch_size=2048 --config.model.dtype=bfloat16 \
    --workdir=$shared_q/actlab/lenet5_relu
"
