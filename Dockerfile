# syntax=docker/dockerfile:1.7
#
# One image for both programs and the CLI:
#   kubegate proxy | kubegate agent | kubegate migrate | kubegate admin …
# Multi-stage: TypeScript is compiled with the dev dependencies in `build`;
# `deps` installs production dependencies only (npm ci --omit=dev); the
# runtime is distroless (no shell, no package manager), runs as the non-root
# user 65532 and writes nothing to its root filesystem, so it runs with
# readOnlyRootFilesystem: true. Build and tag scheme: docs/operations.md.
ARG NODE_MAJOR=24

# --- build: compile dist/ -----------------------------------------------------
FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: compiling needs none, and they are code we did not review.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY common ./common
COPY proxy ./proxy
COPY agent ./agent
RUN npx tsc -p tsconfig.json && npx tsc -p proxy/console/ui/tsconfig.json

# --- deps: production dependencies only ----------------------------------------
FROM node:${NODE_MAJOR}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

# --- runtime ------------------------------------------------------------------
FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot AS runtime
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kubegate" \
      org.opencontainers.image.description="Zero-trust access to a fleet of Kubernetes clusters (proxy and agent)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
WORKDIR /app
ENV NODE_ENV=production
# Everything is owned by root and only readable by the runtime user: the
# process cannot modify its own code even if the root filesystem were writable.
COPY --chown=0:0 package.json ./
COPY --chown=0:0 bin/kubegate.js ./bin/kubegate.js
COPY --chown=0:0 migrations ./migrations
COPY --from=deps --chown=0:0 /app/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/dist/common ./dist/common
COPY --from=build --chown=0:0 /src/dist/proxy ./dist/proxy
COPY --from=build --chown=0:0 /src/dist/agent ./dist/agent
USER 65532:65532
# front (TLS), tunnel listener (mTLS), metrics (internal)
EXPOSE 8443 8444 9090
ENTRYPOINT ["/nodejs/bin/node", "--enable-source-maps", "/app/bin/kubegate.js"]
CMD ["--help"]
