# syntax=docker/dockerfile:1
# One image for every Savepoint service; docker-compose.yml gives each service its command.

ARG NODE_IMAGE=node:24-slim

# --- manifests: the lockfile and every workspace's package.json, all that `npm ci` reads ---------------
# Both stages install from these first, so their dependency layers are rebuilt only when a manifest
# changes. One line per workspace (test/stack/compose.test.ts checks that none is missing).
FROM scratch AS manifests
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/shared/package.json packages/shared/
COPY services/alpaca-simulator/package.json services/alpaca-simulator/
COPY services/board/package.json services/board/
COPY services/checkpointer/package.json services/checkpointer/
COPY services/console/package.json services/console/
COPY services/model-server/package.json services/model-server/
COPY services/reasoner/package.json services/reasoner/
COPY services/trader/package.json services/trader/

# --- build: every workspace's TypeScript compiled to dist/ -------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY --from=manifests /app ./
# Compiling needs no install scripts (those only fetch optional native add-ons).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json ./
COPY packages packages
COPY services services
# Workspaces build in the order package.json lists them: packages/shared before the services using it.
RUN npm run build --workspaces

# --- runtime: production dependencies, compiled code, migrations; runs as the unprivileged node user --
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=manifests /app ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/packages/shared/dist packages/shared/dist
COPY --from=build /app/services/alpaca-simulator/dist services/alpaca-simulator/dist
COPY --from=build /app/services/board/dist services/board/dist
COPY --from=build /app/services/checkpointer/dist services/checkpointer/dist
COPY --from=build /app/services/console/dist services/console/dist
COPY --from=build /app/services/model-server/dist services/model-server/dist
COPY --from=build /app/services/reasoner/dist services/reasoner/dist
COPY --from=build /app/services/trader/dist services/trader/dist
COPY migrations migrations
COPY scripts/healthcheck.mjs scripts/healthcheck.mjs
USER node
CMD ["node", "services/checkpointer/dist/main.js"]
