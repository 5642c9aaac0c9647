# The trainyard image: one binary that runs as `server`, `worker`, `worker --site NAME` or
# `migrate` (see docker-compose.yml). Builds with the classic builder and with BuildKit alike.

# --- build -------------------------------------------------------------------------------
FROM golang:1.26 AS build
WORKDIR /src

# Modules first, in their own layer, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/trainyard ./cmd/trainyard

# --- runtime -----------------------------------------------------------------------------
# Not distroless: site command targets run shell commands, so the runtime needs /bin/sh.
# curl serves the compose health check of the HTTP server (and is at hand for site commands).
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# The trainyard user. USER is numeric below so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 trainyard \
    && useradd --system --uid 10001 --gid trainyard --home-dir /var/lib/trainyard \
       --shell /usr/sbin/nologin trainyard \
    && mkdir -p /var/lib/trainyard/sites \
    && chown -R trainyard:trainyard /var/lib/trainyard

COPY --from=build /out/trainyard /usr/local/bin/trainyard

# The example runbooks. The catalog reads the *.yaml files of one folder (not its
# subfolders), so the examples are the folder's content. Mount your own runbooks over it.
COPY runbooks/examples/ /etc/trainyard/runbooks/

ENV TRAINYARD_RUNBOOKS_DIR=/etc/trainyard/runbooks \
    TRAINYARD_HTTP_ADDR=0.0.0.0:8080 \
    TRAINYARD_LOG_FORMAT=json \
    TRAINYARD_SITE_WORKDIR=/var/lib/trainyard/sites

WORKDIR /var/lib/trainyard
# 10001 is the trainyard user created above.
USER 10001:10001
EXPOSE 8080

ENTRYPOINT ["/usr/local/bin/trainyard"]
CMD ["server"]
