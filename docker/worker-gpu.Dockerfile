# GPU worker: the same code with the native TensorFlow backend for CUDA.
#   docker build -f docker/worker-gpu.Dockerfile -t chorus-worker-gpu .
# tfjs-node-gpu downloads libtensorflow while installing, so this image needs
# network access at build time (it is not built by the test suite).
FROM nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04
RUN apt-get update \
  && apt-get install -y --no-install-recommends curl ca-certificates build-essential python3 \
  && curl -fsSL https://deb.nodesource.com/setup_20.x | bash - \
  && apt-get install -y --no-install-recommends nodejs \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm install --no-save @tensorflow/tfjs-node-gpu@4.22.0
COPY . .
RUN npm run build && npm prune --omit=dev
ENV NODE_ENV=production WORKER_CAPABILITY=gpu
CMD ["node", "dist/apps/worker/src/main.js"]
