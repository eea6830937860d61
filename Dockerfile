# syntax=docker/dockerfile:1
#
# latch (and, once it exists, the chat backend from ./cmd/chat) as static
# binaries in a distroless image that runs as a non-root user:
#
#   docker build -t localhost:32000/latch:latest .
#   docker run --rm -p 8000:8000 localhost:32000/latch:latest serve --help
#
# /latch is the entrypoint; run the chat with --entrypoint /chat.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
# Modules first, so editing code does not refetch them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# Cross-compiles for the platform being built (docker buildx --platform ...)
# without emulation; CGO off makes the binaries static, so the final image
# needs no libc.
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/...

# distroless/static: CA certificates, tzdata and /etc/passwd, no shell, no
# package manager. The :nonroot tag runs as uid/gid 65532, as the Kubernetes
# manifests expect (runAsUser: 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /
USER 65532:65532
# web, websecure, admin (/ping)
EXPOSE 8000 4443 8080
ENTRYPOINT ["/latch"]
