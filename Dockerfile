# GPU image: docker build -t torchsvm . && docker run --gpus all -p 6006:6006 -v $PWD/data:/data torchsvm fit \
#   --config two_layer_net --data.data_dir /data
# The official CUDA PyTorch runtime image already holds torch and torchvision; pip keeps them.
FROM pytorch/pytorch:2.9.0-cuda12.8-cudnn9-runtime

WORKDIR /workspace/torchsvm
COPY pyproject.toml README.md ./
COPY torchsvm ./torchsvm
COPY lightning_modules ./lightning_modules
COPY configs ./configs
COPY scripts ./scripts
RUN pip install --no-cache-dir ".[lightning]"
# The compiled CPU loops built into the image (numba's cache; rebuilt on a CPU of another kind).
RUN python -m torchsvm.precompile

ENV TORCHSVM_DATA_DIR=/data
# TensorBoard: docker run ... --entrypoint tensorboard torchsvm --logdir outputs --bind_all
EXPOSE 6006
ENTRYPOINT ["torchsvm"]
CMD ["--help"]
